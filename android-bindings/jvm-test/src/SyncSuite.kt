// Sync through the generated bindings against a real `swt demo` server (started by
// run-jvm-tests.sh, URL in SWT_SERVER_URL): sign in on a registered scanner, learn a task,
// record scans offline, sync them, see them on the server and get the server's
// projection results back; scans recorded while the session is expired sync after the
// same user signs in again; an expired access token is refreshed (and rotated) once.
package org.swt.core.jvmtest

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.LocalDate
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.UUID
import org.swt.core.CoreException
import org.swt.core.ScannerSession

const val SYNC_GTIN = "00361500231012"
const val DEVICE_1 = "0193f5a0-0000-7000-8000-000000000401"
const val MEMPHIS_GLN = "0614141000012"

/** A DataMatrix read for the demo product: GTIN, expiry 2030-12-31, lot, serial. */
/**
 * A serial no other run has used, in letters only: random digits could look like GS1 data
 * run into the serial (a missing separator), which the rules rightly warn about.
 */
fun uniqueSerial(prefix: String, length: Int = 10): String =
    prefix + UUID.randomUUID().toString().filter { it.isLetterOrDigit() }.take(length)
        .map { if (it.isDigit()) 'G' + (it - '0') else it.uppercaseChar() }.joinToString("")

fun demoPack(serial: String): ByteArray = "]d201${SYNC_GTIN}1730123110L1\u001d21$serial".toByteArray()

/** The manager's side, over plain HTTP (java.net.http; no JSON library needed). */
class Manager(private val base: String) {
    private val http = HttpClient.newHttpClient()
    private val token: String = field(
        post("/api/v1/auth/login", """{"username":"manager","password":"demo-manager-2026"}""", null),
        "access_token",
    )

    private fun post(path: String, json: String, bearer: String?): String {
        val b = HttpRequest.newBuilder(URI.create(base + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json))
        if (bearer != null) b.header("Authorization", "Bearer $bearer")
        val r = http.send(b.build(), HttpResponse.BodyHandlers.ofString())
        check(r.statusCode() in 200..299) { "POST $path: ${r.statusCode()} ${r.body()}" }
        return r.body()
    }

    fun get(path: String): String {
        val r = http.send(
            HttpRequest.newBuilder(URI.create(base + path)).header("Authorization", "Bearer $token").GET().build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        check(r.statusCode() == 200) { "GET $path: ${r.statusCode()} ${r.body()}" }
        return r.body()
    }

    /** Creates a picking task for `quantity` packs of the demo product; returns its id. */
    fun createPicking(order: String, quantity: Int): String = field(
        post(
            "/api/v1/tasks",
            """{"kind":"picking","site":"$MEMPHIS_GLN","refs":{"order":"$order"},""" +
                """"expected":{"lines":[{"gtin":"$SYNC_GTIN","quantity":$quantity}]}}""",
            token,
        ),
        "id",
    )

    fun scanCount(task: String): Int = field(get("/api/v1/tasks/$task"), "scan_count").toInt()

    companion object {
        /** The first value of a top-level-ish JSON field (string or number). */
        fun field(json: String, name: String): String {
            val m = Regex("\"$name\"\\s*:\\s*(\"([^\"]*)\"|(-?[0-9]+))").find(json)
                ?: throw AssertionFailed("no field $name in $json")
            return m.groupValues[2].ifEmpty { m.groupValues[3] }
        }
    }
}

class SyncSuite(private val base: String) : Suite {
    override val name = "sync"

    private fun signIn(s: ScannerSession) = s.login(base, "picker", "demo-picker-2026", DEVICE_1)

    override fun tests() = listOf(
        TestCase("login_sync_scan_and_results_come_back") { dir ->
            val manager = Manager(base)
            val order = "SO-" + UUID.randomUUID().toString().take(8)
            val task = manager.createPicking(order, 3)
            ScannerSession.open(dir.absolutePath).use { s ->
                val who = signIn(s)
                assertEq(DEVICE_1, who.device, "device id in every scan")
                check(who.accessToken != null && who.refreshToken != null) { "tokens stored" }
                check(s.installId() == "5d7e0000000000000000000000000401") {
                    "the registered actor is adopted, got ${s.installId()}"
                }

                // The task list names the site's open tasks without their documents; the
                // picker opens one, which fetches it in one round trip.
                val list = s.refreshTaskList()
                check(list.tasks.any { it.taskId == task && !it.onDevice }) { "listed, not held: $list" }
                check(s.tasks().none { it.taskId == task }) { "not on the device before it is opened" }
                assertEq("open", s.openTask(task).status, "opened and fetched")
                check(s.taskList().tasks.any { it.taskId == task && it.onDevice }) { "held now" }
                val first = s.syncNow()
                check(task in first.inSync) { "task in sync: $first" }
                val info = s.task(task)
                assertEq("picking", info.kind, "kind")
                assertEq("open", info.status, "status")
                assertEq(order, info.refs["order"], "order reference")
                assertEq(3uL, info.progress.unitsExpected, "expected units")
                assertEq(0uL, info.progress.unitsCounted, "nothing counted yet")

                // Offline: three picks, recorded and counted locally, pending for sync.
                val ids = (1..3).map { n ->
                    val f = s.recordScan(task, demoPack(uniqueSerial("K") + n))
                    // The product master came with the first sync: no "unknown product" offline.
                    assertEq("ok", f.code, "scan $n: ${f.message}")
                    f.scanId
                }
                assertEq(3uL, s.progress(task).unitsCounted, "counted offline")
                assertEq(3uL, s.syncStatus().pendingTotal, "pending before sync")

                val second = s.syncNow()
                check(task in second.inSync && second.refused.isEmpty() && second.failed.isEmpty()) { "$second" }
                check(second.roundTrips >= 1u) { "at least one round trip: $second" }
                assertEq(0uL, s.syncStatus().pendingTotal, "acknowledged")
                assertEq(null, s.syncStatus().lastError, "no error")
                assertEq(3, manager.scanCount(task), "server scan_count")

                // The server's projector runs in the background: sync until the results
                // section holds an outcome for every scan (up to ~10 s).
                var missing = ids
                val deadline = System.nanoTime() + 10_000_000_000L
                while (missing.isNotEmpty() && System.nanoTime() < deadline) {
                    Thread.sleep(200)
                    s.syncNow()
                    missing = ids.filter { s.scanResult(task, it)?.projection == null }
                }
                check(missing.isEmpty()) { "no projection result came back for $missing" }
                assertEq("projected", s.scanResult(task, ids[0])?.projection, "projection outcome")
                assertEq(3uL, s.progress(task).unitsCounted, "still counted after the rebuild from the synced document")
            }
        },
        TestCase("expired_session_scans_sync_after_signing_in_again") { dir ->
            val manager = Manager(base)
            val task = manager.createPicking("SO-" + UUID.randomUUID().toString().take(8), 2)
            ScannerSession.open(dir.absolutePath).use { s ->
                signIn(s)
                s.openTask(task)
                // An expired/garbled access token: refreshed once, and the rotated pair is kept.
                val before = s.identity()!!
                s.setTokens("expired", before.refreshToken, 0uL)
                val a = s.recordScan(task, demoPack(uniqueSerial("R")))
                s.syncNow()
                val after = s.identity()!!
                check(after.accessToken != "expired" && after.refreshToken != before.refreshToken) {
                    "tokens refreshed and rotated"
                }
                assertEq(1, manager.scanCount(task), "synced after the refresh")

                // The session is gone for good (refresh token revoked/garbled): sync says so,
                // scans stay and are counted.
                s.setTokens("expired", "spent", 0uL)
                val b = s.recordScan(task, demoPack(uniqueSerial("R")))
                assertThrows<CoreException.NotLoggedIn>("sync with a dead session") { s.syncNow() }
                assertEq(1uL, s.syncStatus().pendingTotal, "the scan waits")
                check(s.syncStatus().lastError != null) { "the failure is recorded" }
                assertEq(2uL, s.progress(task).unitsCounted, "counted offline")
                check(a.scanId != b.scanId) { "distinct ids" }

                signIn(s)
                val r = s.syncNow()
                check(task in r.inSync) { "$r" }
                assertEq(0uL, s.syncStatus().pendingTotal, "nothing pending")
                assertEq(2, manager.scanCount(task), "both scans on the server")
            }
            // A reopened session still writes with the registered actor and is signed in.
            ScannerSession.open(dir.absolutePath).use { s ->
                assertEq("5d7e0000000000000000000000000401", s.installId(), "actor persisted")
                check(s.identity()?.serverUrl != null) { "server remembered" }
            }
        },
        TestCase("offline_verdicts_come_from_reference_data_synced_once") { dir ->
            // The demo's reference data: its product master, the recalled lot AMX2311R,
            // suspect serial 1000007 of lot AMX2406A, and Memphis flagging packs within 180
            // days of expiry. One sync brings it; every verdict below is given offline.
            val manager = Manager(base)
            val task = manager.createPicking("SO-" + UUID.randomUUID().toString().take(8), 5)
            ScannerSession.open(dir.absolutePath).use { s ->
                assertEq(null, s.referenceStatus(), "nothing before the first sync")
                signIn(s)
                s.openTask(task)
                val first = s.syncNow()
                val version = first.referenceVersion ?: throw AssertionFailed("no reference data: $first")
                val ref = s.referenceStatus() ?: throw AssertionFailed("no reference status")
                assertEq(version, ref.version, "version held")
                check(ref.ageMs != null && ref.ageMs!! < 60_000uL) { "just fetched: $ref" }

                fun codes(raw: String) = s.recordScan(task, raw.toByteArray()).let { f ->
                    listOf(f.code) + f.findings.map { it.code }
                }
                val unknown = codes("]d201003123456789061730123110L1\u001d21${uniqueSerial("U", 8)}")
                check("unknown_product" in unknown) { "unknown product: $unknown" }
                val recalled = codes("]d201${SYNC_GTIN}1727093010AMX2311R\u001d211000090")
                assertEq("recalled_lot", recalled[0], "recalled lot: $recalled")
                val blocked = codes("]d201${SYNC_GTIN}1728033110AMX2406A\u001d211000007")
                assertEq("blocked_serial", blocked[0], "suspect serial: $blocked")
                val soon = LocalDate.now(ZoneOffset.UTC).plusDays(30).format(DateTimeFormatter.ofPattern("yyMMdd"))
                val short = codes("]d201${SYNC_GTIN}17${soon}10AMX2406A\u001d21${uniqueSerial("S", 8)}")
                assertEq("expires_soon", short[0], "short expiry: $short")

                // The next sync asks for changes since the version held: none.
                val second = s.syncNow()
                assertEq(version, second.referenceVersion, "unchanged version")
            }
        },
        TestCase("a_scanner_holds_only_what_it_works_on") { dir ->
            // Two open tasks at the site; this scanner works on one. The other never comes
            // to the device unless it is opened, or the device is set to follow the site.
            val manager = Manager(base)
            val mine = manager.createPicking("SO-" + UUID.randomUUID().toString().take(8), 2)
            val other = manager.createPicking("SO-" + UUID.randomUUID().toString().take(8), 2)
            ScannerSession.open(dir.absolutePath).use { s ->
                signIn(s)
                assertEq(org.swt.core.SyncScope.WORKING, s.syncScope(), "the default scope")
                s.openTask(mine)
                s.recordScan(mine, demoPack(uniqueSerial("W")))
                val r = s.syncNow()
                check(mine in r.inSync && other !in r.inSync) { "only the task worked on: $r" }
                check(s.tasks().map { it.taskId } == listOf(mine)) { "held: ${s.tasks()}" }
                check(s.taskList().tasks.any { it.taskId == other && !it.onDevice }) { "the other is listed" }
                assertThrows<CoreException.NotFound>("an id the server does not know") {
                    s.openTask("0193f5a0-0000-7000-8000-00000000dead")
                }
                check(s.tasks().map { it.taskId } == listOf(mine)) { "no empty copy left: ${s.tasks()}" }

                s.setSyncScope(org.swt.core.SyncScope.SITE)
                val site = s.syncNow()
                check(other in site.newTasks && other in site.inSync) { "the site's tasks: $site" }
            }
            ScannerSession.open(dir.absolutePath).use { s ->
                assertEq(org.swt.core.SyncScope.SITE, s.syncScope(), "the choice is kept")
            }
        },
        TestCase("wrong_password_is_refused") { dir ->
            ScannerSession.open(dir.absolutePath).use { s ->
                val e = assertThrows<CoreException.Refused>("wrong password") {
                    s.login(base, "picker", "not-the-password", DEVICE_1)
                }
                assertEq("invalid_credentials", e.code, "code")
                assertEq(null, s.identity(), "nothing stored")
                assertThrows<CoreException.NotLoggedIn>("sync before sign-in") { s.syncNow() }
            }
        },
    )
}

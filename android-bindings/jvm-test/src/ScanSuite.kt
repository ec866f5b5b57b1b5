// Offline scanning through the generated bindings against the host build of swt-core:
// feedback codes, failed reads kept, voids, persistence across reopen, task progress.
package org.swt.core.jvmtest

import java.io.File
import org.swt.core.CoreException
import org.swt.core.ExpectedLineSpec
import org.swt.core.ExpectedUnitSpec
import org.swt.core.Identity
import org.swt.core.ScannerSession
import org.swt.core.Verdict
import org.swt.core.buildTaskDocument

const val G1 = "09506000134352"
const val SSCC1 = "009506000100000018"

/** 2026-11-24 12:00 UTC: fixed, so expiry verdicts do not change with the calendar. */
const val NOW: ULong = 1_795_521_600_000uL

fun pack(serial: String, lot: String = "LOT1", expiry: String = "280131"): ByteArray =
    "]d201${G1}17${expiry}10${lot}\u001d21$serial".toByteArray()

val REFERENCE = """
    {"site":"s1","version":1,
     "products":{"$G1":{"gtin":"$G1","name":"Paracetamol 500 mg","serialized":true}},
     "recalled_lots":{"$G1":["RECALL1"]},
     "blocked_serials":{"$G1":["BLOCKED"]},
     "expiry_policy":{"min_remaining_days":30,"reject_expired":true}}
""".trimIndent().toByteArray()

val PICKER = Identity(
    user = "picker-1", device = "scanner-7", site = "s1",
    accessToken = "expired-token", refreshToken = null, accessExpiresMs = null,
)

/** A logged-in session with reference data and one picking task for 3 packs of G1. */
fun picking(dir: File, quantity: ULong = 3uL): ScannerSession {
    val s = ScannerSession.open(dir.absolutePath)
    s.setIdentity(PICKER)
    s.putReferenceJson(REFERENCE)
    s.addTask("pick-1", buildTaskDocument("picking", "s1", listOf(ExpectedLineSpec(G1, quantity, null)), listOf()))
    return s
}

class ScanSuite : Suite {
    override val name = "scan"

    override fun tests() = listOf(
        TestCase("ok_then_duplicate") { dir ->
            picking(dir).use { s ->
                val a = s.recordScanAt("pick-1", pack("A"), NOW)
                assertEq("ok", a.code, "code")
                assertEq(Verdict.ACCEPT, a.verdict, "verdict")
                assertEq(0.toUByte(), a.feedbackCode, "feedback byte")
                assertEq(G1, a.gtin, "gtin")
                assertEq("A", a.serial, "serial")
                val dup = s.recordScanAt("pick-1", pack("A"), NOW + 1uL)
                assertEq("duplicate", dup.code, "code")
                assertEq(Verdict.REJECT, dup.verdict, "verdict")
                check(dup.scanId != a.scanId) { "every scan gets its own id" }
                assertEq(1uL, dup.progress.unitsCounted, "units counted")
                assertEq(2uL, dup.progress.scansTotal, "scans recorded")
            }
        },
        TestCase("invalid_barcode_is_recorded") { dir ->
            picking(dir).use { s ->
                val f = s.recordScanAt("pick-1", "]d2019506".toByteArray(), NOW)
                assertEq("invalid_barcode", f.code, "code")
                assertEq(Verdict.REJECT, f.verdict, "verdict")
                check(f.gs1ErrorCode != null) { "GS1 error code carried" }
                assertEq(1uL, f.progress.scansTotal, "failed read kept in the audit trail")
                assertEq(1uL, s.syncStatus().pendingTotal, "and pending for sync")
                val empty = s.recordScanAt("pick-1", ByteArray(0), NOW + 1uL)
                assertEq("invalid_barcode", empty.code, "empty read")
            }
        },
        TestCase("rules_for_expired_recalled_blocked_not_expected") { dir ->
            picking(dir).use { s ->
                assertEq("expired", s.recordScanAt("pick-1", pack("E", expiry = "261001"), NOW).code, "expired")
                assertEq("expires_soon", s.recordScanAt("pick-1", pack("S", expiry = "261201"), NOW).code, "short")
                assertEq("recalled_lot", s.recordScanAt("pick-1", pack("R", lot = "RECALL1"), NOW).code, "recall")
                assertEq("blocked_serial", s.recordScanAt("pick-1", pack("BLOCKED"), NOW).code, "blocked")
                val other = "]d20100312345678906\u001d21X".toByteArray()
                assertEq("not_expected", s.recordScanAt("pick-1", other, NOW).code, "not on the order")
                assertEq("not_expected", s.recordScanAt("pick-1", "]C100$SSCC1".toByteArray(), NOW).code, "unknown pallet")
                assertEq("wrong_task_kind", s.recordScanAt("pick-1", "]d24149506000134352".toByteArray(), NOW).code, "location label")
                assertEq(1uL, s.progress("pick-1").unitsCounted, "only the short-dated pack (a warning) counts")
            }
        },
        TestCase("void_and_rescan") { dir ->
            picking(dir).use { s ->
                val a = s.recordScanAt("pick-1", pack("A"), NOW)
                val p = s.voidScan("pick-1", a.scanId)
                assertEq(0uL, p.unitsCounted, "units after void")
                assertEq(1uL, p.scansVoided, "voided")
                assertEq("ok", s.recordScanAt("pick-1", pack("A"), NOW + 1uL).code, "rescan after void")
                assertThrows<CoreException.NotFound>("void twice") { s.voidScan("pick-1", a.scanId) }
                assertThrows<CoreException.NotFound>("unknown task") { s.progress("nope") }
            }
        },
        TestCase("persist_and_reopen") { dir ->
            val ids = picking(dir).use { s ->
                listOf("A", "B").map { s.recordScanAt("pick-1", pack(it), NOW).scanId }
            }
            ScannerSession.open(dir.absolutePath).use { s ->
                assertEq(PICKER, s.identity(), "identity persisted")
                val p = s.progress("pick-1")
                assertEq(2uL, p.unitsCounted, "units after reopen")
                assertEq("0 of 1 lines complete, 2 of 3 units", p.summary, "summary")
                assertEq("duplicate", s.recordScanAt("pick-1", pack("B"), NOW).code, "duplicate after reopen")
                val c = s.recordScanAt("pick-1", pack("C"), NOW)
                check(c.scanId !in ids) { "ids stay unique across restarts" }
                assertEq("1 of 1 lines complete, 3 of 3 units", c.progress.summary, "complete")
                assertEq("over_quantity", s.recordScanAt("pick-1", pack("D"), NOW).code, "over")
                assertEq(5uL, s.syncStatus().pendingTotal, "pending scans")
            }
        },
        TestCase("aggregation_progress") { dir ->
            ScannerSession.open(dir.absolutePath).use { s ->
                s.setIdentity(PICKER)
                s.putReferenceJson(REFERENCE)
                val units = listOf(
                    ExpectedUnitSpec("sscc:$SSCC1", null),
                    ExpectedUnitSpec("sgtin:$G1:A", "sscc:$SSCC1"),
                    ExpectedUnitSpec("sgtin:$G1:B", "sscc:$SSCC1"),
                )
                s.addTask("rcv-1", buildTaskDocument("receiving", "s1", listOf(ExpectedLineSpec(G1, 2uL, null)), units))
                val f = s.recordScanAt("rcv-1", "]C100$SSCC1".toByteArray(), NOW)
                assertEq("ok", f.code, "pallet")
                assertEq(SSCC1, f.sscc, "sscc read")
                assertEq("1 of 1 lines complete, 2 of 2 units", f.progress.summary, "contents counted")
                assertEq("duplicate", s.recordScanAt("rcv-1", pack("A"), NOW).code, "pack inside counted pallet")
                val task = s.task("rcv-1")
                assertEq("receiving", task.kind, "kind")
                assertEq(1, s.tasks().size, "tasks listed")
            }
        },
        TestCase("not_logged_in") { dir ->
            picking(dir).use { s ->
                s.recordScanAt("pick-1", pack("A"), NOW)
                s.logout()
                assertThrows<CoreException.NotLoggedIn>("scan after logout") {
                    s.recordScanAt("pick-1", pack("B"), NOW)
                }
                assertEq(1uL, s.syncStatus().pendingTotal, "offline scans kept for the next login")
                s.setIdentity(PICKER)
                assertEq("ok", s.recordScanAt("pick-1", pack("B"), NOW).code, "after login")
            }
        },
        TestCase("invalid_input_is_typed") { dir ->
            ScannerSession.open(dir.absolutePath).use { s ->
                assertThrows<CoreException.InvalidInput>("bad reference JSON") { s.putReferenceJson("{".toByteArray()) }
                assertThrows<CoreException.InvalidInput>("bad task bytes") { s.addTask("t", byteArrayOf(1, 2, 3)) }
                assertThrows<CoreException.InvalidInput>("bad kind") { buildTaskDocument("nope", "s1", listOf(), listOf()) }
            }
        },
    )
}

// A minimal test harness for the JVM tests of the generated bindings: no JUnit or Gradle
// needed, so one shell script can run them on a fresh machine with kotlinc and JNA only.
package org.swt.core.jvmtest

import java.io.File
import java.nio.file.Files

class AssertionFailed(message: String) : Exception(message)

/** One named test; `body` gets a fresh, empty directory for the session store. */
class TestCase(val name: String, val body: (File) -> Unit)

/** A group of tests; add a new file with another suite (e.g. sync against `swt serve`). */
interface Suite {
    val name: String
    fun tests(): List<TestCase>
}

fun check(cond: Boolean, message: () -> String) {
    if (!cond) throw AssertionFailed(message())
}

fun <T> assertEq(expected: T, actual: T, what: String = "value") {
    if (expected != actual) throw AssertionFailed("$what: expected <$expected>, got <$actual>")
}

inline fun <reified E : Throwable> assertThrows(what: String, body: () -> Unit): E {
    try {
        body()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionFailed("$what: expected ${E::class.simpleName}, got $e")
    }
    throw AssertionFailed("$what: expected ${E::class.simpleName}, nothing thrown")
}

/** Runs every test, each in its own temp directory; returns (passed, failed). */
fun runSuites(suites: List<Suite>, filter: String?): Pair<Int, Int> {
    var passed = 0
    var failed = 0
    for (suite in suites) {
        for (t in suite.tests()) {
            val full = "${suite.name}.${t.name}"
            if (filter != null && !full.contains(filter)) continue
            val dir = Files.createTempDirectory("swt-jvm-test-").toFile()
            val started = System.nanoTime()
            try {
                t.body(dir)
                passed++
                println("ok   $full (${(System.nanoTime() - started) / 1_000_000} ms)")
            } catch (e: Throwable) {
                failed++
                println("FAIL $full: $e")
                e.printStackTrace(System.out)
            } finally {
                dir.deleteRecursively()
            }
        }
    }
    return Pair(passed, failed)
}

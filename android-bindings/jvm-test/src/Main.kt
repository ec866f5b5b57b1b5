// Entry point of the JVM tests: runs every suite and ends with "N passed, M failed".
package org.swt.core.jvmtest

import kotlin.system.exitProcess

fun main(args: Array<String>) {
    // Suites that need a running server register when run-jvm-tests.sh started one.
    val suites = mutableListOf<Suite>(ScanSuite())
    System.getenv("SWT_SERVER_URL")?.let { suites += SyncSuite(it) }
    val (passed, failed) = runSuites(suites, args.firstOrNull())
    println("$passed passed, $failed failed")
    exitProcess(if (failed == 0 && passed > 0) 0 else 1)
}

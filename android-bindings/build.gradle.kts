// Android library module: the swt-core native libraries (built by cargo-ndk) plus the
// UniFFI-generated Kotlin bindings (generated at build time, never committed).
import org.gradle.api.tasks.Exec

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

val repoRoot: File = rootDir.parentFile
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val generatedDir = layout.buildDirectory.dir("generated/uniffi-android")
val cargoTarget: String = System.getenv("CARGO_TARGET_DIR") ?: "${repoRoot}/target"

android {
    namespace = "org.swt.core"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].java.srcDir(generatedDir)
    sourceSets["main"].jniLibs.srcDir("src/main/jniLibs")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // >= 5.12 required by UniFFI; @aar carries the Android natives of JNA.
    implementation("net.java.dev.jna:jna:5.19.1@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.0")
    // Local JVM unit tests need the desktop JNA jar (the AAR has no desktop natives).
    testImplementation("net.java.dev.jna:jna:5.19.1")
}

// Release .so files for every ABI (16 KB pages: cargo-ndk handles NDK <= r27, r28+ does it).
val cargoNdk by tasks.registering(Exec::class) {
    workingDir = repoRoot
    val args = mutableListOf("cargo", "ndk")
    abis.forEach { args += listOf("-t", it) }
    args += listOf("-P", "26", "-o", "android-bindings/src/main/jniLibs", "build", "--release", "-p", "swt-core")
    commandLine(args)
}

// Kotlin bindings from the unstripped arm64 library (metadata is arch-independent), with
// `android = true` (android.system cleaner) in a config generated here, so the committed
// uniffi.toml stays JVM-compatible for the plain-JVM tests.
val uniffiConfig = layout.buildDirectory.file("uniffi-android.toml")
val uniffiGen by tasks.registering(Exec::class) {
    dependsOn(cargoNdk)
    workingDir = repoRoot
    doFirst {
        val f = uniffiConfig.get().asFile
        f.parentFile.mkdirs()
        f.writeText("[bindings.kotlin]\npackage_name = \"org.swt.core\"\nandroid = true\n")
    }
    commandLine(
        "cargo", "run", "-p", "uniffi-bindgen", "--", "generate", "--no-format",
        "--config", uniffiConfig.get().asFile.absolutePath,
        "$cargoTarget/aarch64-linux-android/release/libswt_core.so",
        "--language", "kotlin", "--out-dir", generatedDir.get().asFile.absolutePath,
    )
}

tasks.named("preBuild") { dependsOn(uniffiGen) }

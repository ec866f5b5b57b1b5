// Stand-alone build of the Android library module that wraps swt-core for app teams.
// Needs the Android SDK + NDK, rustup targets and cargo-ndk (see README.md).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "swt-core-android"

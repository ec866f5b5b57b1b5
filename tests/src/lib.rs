//! Whole-flow tests: see tests/tests/.

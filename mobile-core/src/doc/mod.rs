//! Task documents over Automerge: the only module that knows Automerge paths.

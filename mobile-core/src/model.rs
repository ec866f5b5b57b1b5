//! Domain records shared by the scanner and the server: scans and their encoding.

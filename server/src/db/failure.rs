//! What a database error means for the caller: an outage worth answering 503 and
//! retrying later, or a conflict between transactions worth retrying at once. Told by
//! the back-end's error codes (PostgreSQL SQLSTATE, SQLite result codes), never by the
//! wording of a message.

use sea_orm::{DbErr, RuntimeErr};

/// The back-end's error code, when the error came from the database itself.
fn code(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether a transaction failed only because another one got in its way, so running it
/// again is expected to succeed: PostgreSQL deadlock (40P01) or serialization failure
/// (40001); SQLite busy (5) or locked (6), in any extended form.
pub fn transient(err: &DbErr) -> bool {
    code(err).is_some_and(|c| transient_code(&c))
}

fn transient_code(code: &str) -> bool {
    matches!(code, "40P01" | "40001")
        || code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

/// Whether a database error means the database cannot be reached or used right now
/// (pool exhausted or closed, connection refused or lost, database gone, shutting down,
/// SQLite file busy or unreadable): worth a retry, unlike a failing statement.
pub fn unreachable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        DbErr::Conn(_) => return true,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| unreachable_code(&code)),
        _ => false,
    }
}

/// Database error codes of an outage rather than of a statement.
fn unreachable_code(code: &str) -> bool {
    // PostgreSQL SQLSTATE: class 08 connection exception, 57P01–57P03 shutting down or
    // not accepting connections, 3D000 database does not exist, 53300 too many
    // connections.
    if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "3D000" | "53300") {
        return true;
    }
    // SQLite (extended) result codes; the primary code is the low byte: BUSY 5, LOCKED 6,
    // IOERR 10, FULL 13, CANTOPEN 14, NOTADB 26.
    code.parse::<u32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14 | 26))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_codes_are_told_from_statement_errors() {
        for code in ["08006", "57P01", "3D000", "53300", "5", "517", "14", "10"] {
            assert!(unreachable_code(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "19", "2067", "1"] {
            assert!(!unreachable_code(code), "{code}");
        }
    }

    #[test]
    fn conflicts_are_told_from_other_errors() {
        for code in ["40P01", "40001", "5", "517", "6", "262"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "08006", "42P01", "19", "2067", "1", "14"] {
            assert!(!transient_code(code), "{code}");
        }
        assert!(!transient(&DbErr::RecordNotInserted));
    }
}

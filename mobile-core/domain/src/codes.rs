//! Code tables: enums whose variants each have a stable code, written once with
//! [`code_table!`](crate::code_table).
//!
//! Codes are stored in task documents and databases and sent over the wire, so a table's
//! codes never change; new variants get new codes. Anything a table needs beyond the code
//! (a message, a second code, a verdict) is a plain `impl` beside the table.

use std::fmt;

/// A string that is not a code of the table it was parsed as (the `FromStr` error of every
/// table [`code_table!`](crate::code_table) defines).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} is not a {table} code")]
pub struct UnknownCode {
    /// The table's type name.
    pub table: &'static str,
    /// The string that did not parse.
    pub code: String,
}

/// A table with string codes (every [`code_table!`](crate::code_table) with `Variant =
/// "code"` implements it), so [`Code`] can wrap any of them.
pub trait StringCode: Copy + Sized + 'static {
    /// The variant's stable code.
    fn code_str(self) -> &'static str;
    /// The variant for a code, `None` if this build does not know it.
    fn from_code_str(code: &str) -> Option<Self>;
}

/// A code read from data another build may have written (a task document's `results`,
/// written by a server that can be newer than this scanner): a variant this build knows,
/// or the code exactly as written. An unknown code is kept and shown, never dropped or
/// turned into a guess, and written back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code<T> {
    /// A variant of the table.
    Known(T),
    /// A code the table does not have.
    Unknown(String),
}

impl<T: StringCode> Code<T> {
    /// Reads a code: the variant when the table has it, else [`Code::Unknown`].
    pub fn read(code: &str) -> Self {
        T::from_code_str(code).map_or_else(|| Self::Unknown(code.to_owned()), Self::Known)
    }

    /// The code as stored.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Known(v) => v.code_str(),
            Self::Unknown(c) => c,
        }
    }

    /// The variant, if this build knows the code.
    pub fn known(&self) -> Option<T> {
        match self {
            Self::Known(v) => Some(*v),
            Self::Unknown(_) => None,
        }
    }
}

impl<T: StringCode> From<T> for Code<T> {
    fn from(v: T) -> Self {
        Self::Known(v)
    }
}

impl<T: StringCode + PartialEq> PartialEq<T> for Code<T> {
    fn eq(&self, other: &T) -> bool {
        self.known() == Some(*other)
    }
}

impl<T: StringCode> fmt::Display for Code<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines an enum and its table of stable codes.
///
/// With string codes (`Variant = "code"`) the enum gets:
/// - `ALL`, every variant in table order;
/// - a `const fn` returning the code, named by the `fn` line after the variants (each
///   table keeps the name its callers know: `code` or `as_str`), with that line's doc;
/// - `parse(&str) -> Option<Self>`, and `FromStr` with [`UnknownCode`] as its error;
/// - `Display` and serde, both as the code.
///
/// With one-byte codes (`enum Name: u8`, `Variant = 1 => "name"`), as stored in scan
/// records: `code()` / `from_code()` for the byte, `as_str()` for the snake_case name,
/// `ALL`, `Display`, and an `Other(u8)` variant that keeps codes written by a newer build.
///
/// Every table derives `Debug, Clone, Copy, PartialEq, Eq, Hash`; attributes before
/// `enum` (docs, more derives, `#[non_exhaustive]`) go onto the enum.
///
/// ```
/// swt_domain::code_table! {
///     /// Colour of a label.
///     pub enum Colour {
///         /// Red.
///         Red = "red",
///         /// Dark blue.
///         DarkBlue = "dark_blue",
///     }
///     /// The stable code.
///     fn code;
/// }
/// assert_eq!(Colour::DarkBlue.code(), "dark_blue");
/// assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
/// assert_eq!(Colour::parse("green"), None);
/// assert_eq!(Colour::ALL, &[Colour::Red, Colour::DarkBlue]);
/// ```
#[macro_export]
macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: u8 {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this build does not know (written by a newer device); kept as is.
            Other(u8),
        }

        impl $name {
            /// Every known variant, in code order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// The stable one-byte code stored in records.
            pub const fn code(self) -> u8 {
                match self { $( Self::$variant => $code, )* Self::Other(c) => c }
            }

            /// The variant for a code; unknown codes become `Other`.
            pub const fn from_code(code: u8) -> Self {
                match code { $( $code => Self::$variant, )* c => Self::Other(c) }
            }

            /// The stable snake_case name (logs, JSON, the foreign side).
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )* Self::Other(_) => "other" }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    Self::Other(c) => ::core::write!(f, "other({c})"),
                    v => f.write_str(v.as_str()),
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),* $(,)?
        }
        $(#[$fmeta:meta])*
        fn $code_fn:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $( $(#[$vmeta])* $variant, )* }

        impl $name {
            /// Every variant, in table order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            $(#[$fmeta])*
            pub const fn $code_fn(self) -> &'static str {
                match self { $( Self::$variant => $code, )* }
            }

            /// The variant a stable code stands for (`None` for a code not in the table).
            pub fn parse(code: &str) -> ::core::option::Option<Self> {
                match code { $( $code => ::core::option::Option::Some(Self::$variant), )* _ => None }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.$code_fn())
            }
        }

        impl $crate::codes::StringCode for $name {
            fn code_str(self) -> &'static str {
                self.$code_fn()
            }
            fn from_code_str(code: &str) -> ::core::option::Option<Self> {
                Self::parse(code)
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;
            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| $crate::codes::UnknownCode {
                    table: ::core::stringify!($name),
                    code: s.into(),
                })
            }
        }

        impl $crate::codes::__private::serde::Serialize for $name {
            fn serialize<S: $crate::codes::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.$code_fn())
            }
        }

        impl<'de> $crate::codes::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::codes::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                $crate::codes::__private::deserialize(
                    deserializer,
                    ::core::stringify!($name),
                    &[ $( $code, )* ],
                    Self::parse,
                )
            }
        }
    };
}

/// What the expansions of [`code_table!`](crate::code_table) call; not an API.
#[doc(hidden)]
pub mod __private {
    use super::fmt;
    pub use serde;
    use serde::de::{self, Deserializer, Visitor};

    /// Reads a code string as a variant of `table`; any other string is serde's
    /// "unknown variant" error listing `codes`.
    pub fn deserialize<'de, D: Deserializer<'de>, T>(
        deserializer: D,
        table: &'static str,
        codes: &'static [&'static str],
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, D::Error> {
        struct Code<T> {
            table: &'static str,
            codes: &'static [&'static str],
            parse: fn(&str) -> Option<T>,
        }
        impl<T> Visitor<'_> for Code<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a {} code", self.table)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
                (self.parse)(v).ok_or_else(|| E::unknown_variant(v, self.codes))
            }
        }
        deserializer.deserialize_str(Code {
            table,
            codes,
            parse,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::{Debug, Display};
    use std::str::FromStr;

    use super::UnknownCode;

    crate::code_table! {
        /// A test table.
        #[derive(PartialOrd, Ord)]
        enum Shade {
            /// Light.
            Light = "light",
            /// Very dark.
            VeryDark = "very_dark",
        }
        /// Its code.
        fn as_str;
    }

    crate::code_table! {
        /// A test table with byte codes.
        enum Step: u8 {
            /// First.
            First = 1 => "first",
            /// Second.
            Second = 7 => "second",
        }
    }

    /// Every code of a table parses back to its variant (so no code is used twice).
    fn round_trips<T>(all: &[T])
    where
        T: Copy + Eq + Debug + Display + FromStr<Err = UnknownCode>,
    {
        for &v in all {
            assert_eq!(v.to_string().parse::<T>(), Ok(v), "{v:?}");
        }
    }

    #[test]
    fn code_keeps_what_the_table_does_not_know() {
        use super::Code;
        let known: Code<Shade> = Code::read("very_dark");
        assert_eq!(known, Code::Known(Shade::VeryDark));
        assert_eq!(known, Shade::VeryDark);
        assert_eq!(known.known(), Some(Shade::VeryDark));
        let newer: Code<Shade> = Code::read("ultra_violet");
        assert_eq!(newer, Code::Unknown("ultra_violet".into()));
        assert_eq!(newer.known(), None);
        assert_ne!(newer, Shade::Light);
        // Written back exactly as read.
        assert_eq!(newer.as_str(), "ultra_violet");
        assert_eq!(newer.to_string(), "ultra_violet");
        assert_eq!(Code::from(Shade::Light).as_str(), "light");
    }

    #[test]
    fn string_table() {
        assert_eq!(Shade::ALL, &[Shade::Light, Shade::VeryDark]);
        assert_eq!(Shade::VeryDark.as_str(), "very_dark");
        assert_eq!(Shade::VeryDark.to_string(), "very_dark");
        assert_eq!(Shade::parse("light"), Some(Shade::Light));
        assert_eq!(Shade::parse("Light"), None);
        let err = "dim".parse::<Shade>().unwrap_err();
        assert_eq!(
            err,
            UnknownCode {
                table: "Shade",
                code: "dim".into()
            }
        );
        assert_eq!(err.to_string(), "\"dim\" is not a Shade code");
        assert!(Shade::Light < Shade::VeryDark);
        round_trips(Shade::ALL);
    }

    #[test]
    fn string_table_serde_is_the_code() {
        let json = serde_json::to_string(&[Shade::VeryDark, Shade::Light]).unwrap();
        assert_eq!(json, r#"["very_dark","light"]"#);
        let back: Vec<Shade> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [Shade::VeryDark, Shade::Light]);
        let err = serde_json::from_str::<Shade>(r#""dim""#).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown variant `dim`, expected `light` or `very_dark`"),
            "{err}"
        );
        assert!(serde_json::from_str::<Shade>("3").is_err());
    }

    #[test]
    fn byte_table() {
        assert_eq!(Step::ALL, &[Step::First, Step::Second]);
        assert_eq!(Step::Second.code(), 7);
        assert_eq!(Step::from_code(7), Step::Second);
        assert_eq!(Step::from_code(9), Step::Other(9));
        assert_eq!(Step::Other(9).code(), 9);
        assert_eq!(Step::First.as_str(), "first");
        assert_eq!(Step::Other(9).as_str(), "other");
        assert_eq!(Step::First.to_string(), "first");
        assert_eq!(Step::Other(9).to_string(), "other(9)");
    }

    /// The crate's tables: every code parses back to its own variant.
    #[test]
    fn domain_tables_round_trip() {
        round_trips(crate::doc::TaskKind::ALL);
        round_trips(crate::doc::TaskStatus::ALL);
        round_trips(crate::doc::RefusalReason::ALL);
        round_trips(crate::rules::Reason::ALL);
        round_trips(crate::rules::Verdict::ALL);
        round_trips(crate::gs1::ErrorKind::ALL);
        round_trips(crate::gs1::WarningKind::ALL);
        for &a in crate::model::Action::ALL {
            assert_eq!(crate::model::Action::from_code(a.code()), a);
        }
        for &f in crate::model::Feedback::ALL {
            assert_eq!(crate::model::Feedback::from_code(f.code()), f);
        }
    }
}

//! The enums log-service stores as numbers and shows by name (levels, span kinds, span
//! statuses), declared by one macro so that each variant's number and name are written once,
//! beside the variant, and the conversions cannot disagree with them.

/// Declares each `pub enum $name` with its variants' stored numbers as discriminants, and two
/// conversions: `from_i64`, the variant stored as a number (a number no variant has reads as
/// the `unknown` variant, so an odd row or record never fails a read), and `as_str`, the
/// variant's upper-case name as the JSON APIs spell it.
macro_rules! coded_enum {
    ($(
        $(#[$meta:meta])*
        pub enum $name:ident (unknown: $unknown:ident) {
            $($variant:ident = $code:literal => $text:literal,)+
        }
    )+) => {$(
        $(#[$meta])*
        pub enum $name {
            $($variant = $code,)+
        }

        impl $name {
            #[doc = concat!(
                "The variant stored as `n`; a number no variant has reads as `",
                stringify!($unknown),
                "`."
            )]
            pub fn from_i64(n: i64) -> $name {
                match n {
                    $($code => $name::$variant,)+
                    _ => $name::$unknown,
                }
            }

            /// The upper-case name, as the JSON APIs spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }
    )+};
}

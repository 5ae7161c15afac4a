//! The bridge between the parameter table and the typed settings structs:
//! the [`Field`] conversions between [`Value`] and Rust field types, and the
//! `settings_struct!` macro that declares a settings struct together with
//! its by-name setter/getter, so a field and its parameter name are written
//! exactly once.

use std::path::PathBuf;
use std::time::Duration;

use super::values::Value;

/// A Rust type that can hold a parameter value.
pub(crate) trait Field: Sized {
    /// The zero value before the table defaults are applied.
    fn blank() -> Self;
    /// Converts a validated value; `None` if the value's shape does not fit
    /// (a table/struct mismatch, caught by the tests).
    fn from_value(v: Value) -> Option<Self>;
    /// The value in the shape [`super::values::parse_value`] produces.
    fn to_value(&self) -> Value;
}

impl Field for String {
    fn blank() -> Self {
        String::new()
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl Field for Option<String> {
    fn blank() -> Self {
        None
    }
    fn from_value(v: Value) -> Option<Self> {
        String::from_value(v).map(|s| Some(s).filter(|s| !s.is_empty()))
    }
    fn to_value(&self) -> Value {
        Value::Text(self.clone().unwrap_or_default())
    }
}

impl Field for PathBuf {
    fn blank() -> Self {
        PathBuf::new()
    }
    fn from_value(v: Value) -> Option<Self> {
        String::from_value(v).map(PathBuf::from)
    }
    fn to_value(&self) -> Value {
        Value::Text(self.to_string_lossy().into_owned())
    }
}

impl Field for Option<PathBuf> {
    fn blank() -> Self {
        None
    }
    fn from_value(v: Value) -> Option<Self> {
        Option::<String>::from_value(v).map(|s| s.map(PathBuf::from))
    }
    fn to_value(&self) -> Value {
        Value::Text(self.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default())
    }
}

impl Field for bool {
    fn blank() -> Self {
        false
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl Field for Option<bool> {
    fn blank() -> Self {
        None
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Bool3(b) => Some(b),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool3(*self)
    }
}

impl Field for Vec<String> {
    fn blank() -> Self {
        Vec::new()
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::List(self.clone())
    }
}

macro_rules! int_field {
    ($t:ty) => {
        impl Field for $t {
            fn blank() -> Self {
                0
            }
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    Value::Int(n) => <$t>::try_from(n).ok(),
                    _ => None,
                }
            }
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    };
}
int_field!(u16);
int_field!(u32);
int_field!(i32);

impl Field for Option<usize> {
    fn blank() -> Self {
        None
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Int(n) => usize::try_from(n).ok().map(Some),
            Value::Unset => Some(None),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        match self {
            // usize values here came from an i64 in range, so this fits.
            Some(n) => Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
            None => Value::Unset,
        }
    }
}

/// Whole seconds.
impl Field for Duration {
    fn blank() -> Self {
        Duration::ZERO
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Int(n) => u64::try_from(n).ok().map(Duration::from_secs),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(self.as_secs()).unwrap_or(i64::MAX))
    }
}

/// Declares a settings struct whose fields are each bound to a canonical
/// parameter name, and generates:
/// - `blank()`: every field at its [`Field::blank`] value;
/// - `set_param(name, value) -> Option<bool>`: `None` for a name that is
///   not a field, `Some(false)` when the value's shape does not fit;
/// - `get_param(name) -> Option<Value>`;
/// - `PARAM_NAMES`: the bound canonical names.
macro_rules! settings_struct {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $param:literal => $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// Canonical names of the parameters this struct holds.
            #[allow(dead_code)]
            pub(crate) const PARAM_NAMES: &'static [&'static str] = &[$($param),*];

            fn blank() -> Self {
                $name { $($field: <$ty as $crate::config::fields::Field>::blank(),)* }
            }

            /// Stores `value` in the field bound to canonical name `param`.
            pub(crate) fn set_param(
                &mut self,
                param: &str,
                value: $crate::config::values::Value,
            ) -> Option<bool> {
                match param {
                    $($param => {
                        match <$ty as $crate::config::fields::Field>::from_value(value) {
                            Some(v) => { self.$field = v; Some(true) }
                            None => Some(false),
                        }
                    })*
                    _ => None,
                }
            }

            /// The value of the field bound to canonical name `param`.
            pub(crate) fn get_param(&self, param: &str) -> Option<$crate::config::values::Value> {
                match param {
                    $($param => Some($crate::config::fields::Field::to_value(&self.$field)),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use settings_struct;

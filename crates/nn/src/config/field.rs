//! Reading a JSON config with errors that say where: every value is read through a [`Field`]
//! that knows its path (`layers[1].config.units`), so a bad or unknown entry is reported as
//! `layers[1].config.units: expected a whole number of at least 1, got "abc"`.

use serde_json::{Map, Value};

/// A config problem: where, and what was expected and what came.
pub(crate) type ConfigResult<V> = std::result::Result<V, String>;

/// A value inside a config, with its path from the root.
#[derive(Clone, Copy)]
pub(crate) struct Field<'a> {
    pub value: &'a Value,
    path: &'a str,
}

impl<'a> Field<'a> {
    pub fn root(value: &'a Value) -> Self {
        Field { value, path: "" }
    }

    /// The path of this value.
    pub fn path(&self) -> &'a str {
        self.path
    }

    fn err<V>(&self, expected: &str) -> ConfigResult<V> {
        let shown = match self.value {
            Value::String(s) => format!("\"{}\"", s.chars().take(60).collect::<String>()),
            Value::Object(_) => "an object".to_string(),
            Value::Array(_) => "a list".to_string(),
            other => other.to_string(),
        };
        let at = if self.path.is_empty() {
            "config"
        } else {
            self.path
        };
        Err(format!("{at}: expected {expected}, got {shown}"))
    }

    fn object(&self) -> ConfigResult<&'a Map<String, Value>> {
        match self.value {
            Value::Object(m) => Ok(m),
            _ => self.err("an object"),
        }
    }

    /// The path of child `key`.
    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Calls `f` with member `key`, which must be present (and not null).
    pub fn get<V>(
        &self,
        key: &str,
        f: impl FnOnce(Field<'_>) -> ConfigResult<V>,
    ) -> ConfigResult<V> {
        let path = self.child_path(key);
        match self.object()?.get(key) {
            Some(Value::Null) | None => Err(format!("{path}: is missing")),
            Some(value) => f(Field { value, path: &path }),
        }
    }

    /// Calls `f` with member `key` if it is present and not null.
    pub fn get_opt<V>(
        &self,
        key: &str,
        f: impl FnOnce(Field<'_>) -> ConfigResult<V>,
    ) -> ConfigResult<Option<V>> {
        let path = self.child_path(key);
        match self.object()?.get(key) {
            Some(Value::Null) | None => Ok(None),
            Some(value) => f(Field { value, path: &path }).map(Some),
        }
    }

    /// An error for any member not in `known` (a typo would otherwise be silently ignored).
    pub fn only(&self, known: &[&str]) -> ConfigResult<()> {
        for key in self.object()?.keys() {
            if !known.contains(&key.as_str()) {
                return Err(format!(
                    "{}: unknown entry '{key}'; valid entries are: {}",
                    if self.path.is_empty() {
                        "config"
                    } else {
                        self.path
                    },
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Calls `f` with each item of a list.
    pub fn items<V>(
        &self,
        mut f: impl FnMut(Field<'_>) -> ConfigResult<V>,
    ) -> ConfigResult<Vec<V>> {
        match self.value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let path = format!("{}[{i}]", self.path);
                    f(Field { value, path: &path })
                })
                .collect(),
            _ => self.err("a list"),
        }
    }

    pub fn str(&self) -> ConfigResult<&'a str> {
        self.value.as_str().map_or_else(|| self.err("a string"), Ok)
    }

    pub fn bool(&self) -> ConfigResult<bool> {
        self.value
            .as_bool()
            .map_or_else(|| self.err("true or false"), Ok)
    }

    /// A finite number.
    pub fn f64(&self) -> ConfigResult<f64> {
        match self.value.as_f64() {
            Some(v) if v.is_finite() => Ok(v),
            _ => self.err("a number"),
        }
    }

    pub fn u64(&self) -> ConfigResult<u64> {
        self.value
            .as_u64()
            .map_or_else(|| self.err("a whole number"), Ok)
    }

    /// A whole number, of either sign (an axis, a class label).
    pub fn int(&self) -> ConfigResult<i64> {
        self.value
            .as_i64()
            .map_or_else(|| self.err("a whole number"), Ok)
    }

    /// A whole number of at least `min`, that fits in memory sizes.
    pub fn count(&self, min: usize) -> ConfigResult<usize> {
        match self.value.as_u64().and_then(|v| usize::try_from(v).ok()) {
            Some(v) if v >= min => Ok(v),
            _ => self.err(&format!("a whole number of at least {min}")),
        }
    }

    /// Two whole numbers of at least `min` (`[3, 3]`), or one for both (`3`), as Keras
    /// writes a kernel size or strides.
    pub fn pair(&self, min: usize) -> ConfigResult<[usize; 2]> {
        if self.value.is_number() {
            let n = self.count(min)?;
            return Ok([n, n]);
        }
        let items = self.items(|i| i.count(min))?;
        <[usize; 2]>::try_from(items)
            .or_else(|_| self.err(&format!("two whole numbers of at least {min}")))
    }

    /// One of `valid` (a name).
    pub fn one_of<'v>(&self, valid: &[&'v str]) -> ConfigResult<&'v str> {
        let s = self.str()?;
        valid
            .iter()
            .copied()
            .find(|v| *v == s)
            .map_or_else(|| self.err(&format!("one of {}", valid.join(", "))), Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_give_the_path_and_what_came() {
        let v = json!({"layers": [{"units": 3}, {"units": "abc"}], "name": 5});
        let root = Field::root(&v);
        let e = root
            .get("layers", |l| {
                l.items(|item| item.get("units", |u| u.count(1)))
            })
            .unwrap_err();
        assert_eq!(
            e,
            "layers[1].units: expected a whole number of at least 1, got \"abc\""
        );
        assert_eq!(
            root.get("name", |n| n.str().map(str::to_string))
                .unwrap_err(),
            "name: expected a string, got 5"
        );
        assert_eq!(
            root.get("seed", |s| s.u64()).unwrap_err(),
            "seed: is missing"
        );
        assert_eq!(root.get_opt("seed", |s| s.u64()).unwrap(), None);
        assert_eq!(
            root.only(&["layers"]).unwrap_err(),
            "config: unknown entry 'name'; valid entries are: layers"
        );
        let e = Field::root(&json!("relux"))
            .one_of(&["relu", "tanh"])
            .unwrap_err();
        assert_eq!(e, "config: expected one of relu, tanh, got \"relux\"");
        assert!(Field::root(&json!(f64::MAX)).f64().is_ok());
        assert!(Field::root(&json!([1])).f64().is_err());
    }
}

//! The SPEC grammar shared by `--model`, `--data`, `--optimizer` and `--schedule`:
//!
//! ```text
//! spec := name [ ":" arg { "," arg } ]
//! arg  := key "=" value | positional
//! ```
//!
//! e.g. `resnet:depth=20,width=32`, `patterns:classes=10,size=16,signal=0.5`,
//! `idx:IMAGES,LABELS`. Lists inside a value use `+` (`aux=stage1+stage2`).
//! A wrapper takes another spec as its first positional argument and claims
//! only its own keys (`subset:digits:size=16,frac=0.1`: `frac` is the
//! subset's, `size` the digits').

use crate::error::{Result, TrainError};

/// One parsed spec, with its arguments marked as they are read so that an
/// unknown key is reported.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The whole text, for messages.
    pub text: String,
    /// The name before the colon.
    pub name: String,
    args: Vec<(Option<String>, String, bool)>,
    /// The keys read so far, in order: the valid keys an error lists, so a
    /// parser never keeps a second list of them by hand.
    asked: Vec<String>,
}

impl Spec {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for an empty name or an empty argument.
    pub fn parse(text: &str) -> Result<Spec> {
        let text = text.trim();
        let (name, rest) = match text.split_once(':') {
            Some((n, r)) => (n, Some(r)),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(TrainError::Spec(format!(
                "'{text}': a spec starts with a name, as in name:key=value,..."
            )));
        }
        let mut args: Vec<(Option<String>, String, bool)> = Vec::new();
        if let Some(rest) = rest {
            for part in split_args(rest) {
                if part.is_empty() {
                    return Err(TrainError::Spec(format!(
                        "'{text}': empty argument (two commas, or a trailing comma?)"
                    )));
                }
                match part.split_once('=') {
                    // A positional may itself be a spec with '=' inside ("digits:size=16").
                    Some((k, v)) if !k.contains(':') => {
                        if k.is_empty() {
                            return Err(TrainError::Spec(format!(
                                "'{text}': '{part}' has no key before '='"
                            )));
                        }
                        if args.iter().any(|(seen, _, _)| seen.as_deref() == Some(k)) {
                            return Err(TrainError::Spec(format!(
                                "'{text}': duplicate key '{k}' (give each key once)"
                            )));
                        }
                        args.push((Some(k.to_string()), v.to_string(), false));
                    }
                    _ => args.push((None, part.to_string(), false)),
                }
            }
        }
        Ok(Spec {
            text: text.to_string(),
            name: name.to_string(),
            args,
            asked: Vec::new(),
        })
    }

    /// The spec as text again, named `name`, with `set`'s key given its
    /// value (appended when absent); every other argument as written.
    pub fn rewritten(&self, name: &str, set: Option<(&str, &str)>) -> String {
        let mut args: Vec<String> = Vec::with_capacity(self.args.len() + 1);
        let mut pending = set;
        for (k, v, _) in &self.args {
            match (k.as_deref(), set) {
                (Some(k), Some((key, value))) if k == key => {
                    args.push(format!("{k}={value}"));
                    pending = None;
                }
                (Some(k), _) => args.push(format!("{k}={v}")),
                (None, _) => args.push(v.clone()),
            }
        }
        if let Some((key, value)) = pending {
            args.push(format!("{key}={value}"));
        }
        if args.is_empty() {
            name.to_string()
        } else {
            format!("{name}:{}", args.join(","))
        }
    }

    fn take(&mut self, key: &str) -> Option<String> {
        if !self.asked.iter().any(|k| k == key) {
            self.asked.push(key.to_string());
        }
        self.args
            .iter_mut()
            .find(|(k, _, used)| !used && k.as_deref() == Some(key))
            .map(|(_, v, used)| {
                *used = true;
                v.clone()
            })
    }

    fn bad(&self, key: &str, value: &str, want: &str) -> TrainError {
        TrainError::Spec(format!("'{}': {key}={value} is not {want}", self.text))
    }

    /// A whole number, or `default` when the key is absent.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for a malformed number.
    pub fn usize(&mut self, key: &str, default: usize) -> Result<usize> {
        match self.take(key) {
            Some(v) => v.parse().map_err(|_| self.bad(key, &v, "a whole number")),
            None => Ok(default),
        }
    }

    /// A number, or `default`.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for a malformed or non-finite number.
    pub fn f64(&mut self, key: &str, default: f64) -> Result<f64> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    /// A number when the key is present.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for a malformed or non-finite number.
    pub fn opt_f64(&mut self, key: &str) -> Result<Option<f64>> {
        match self.take(key) {
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.bad(key, &v, "a finite number")),
            },
            None => Ok(None),
        }
    }

    /// A number greater than zero, or `default`.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for a malformed, non-finite or non-positive number.
    pub fn positive(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.opt_f64(key)? {
            Some(x) if x > 0.0 => Ok(x),
            Some(x) => Err(self.bad(key, &x.to_string(), "greater than zero")),
            None => Ok(default),
        }
    }

    /// `true`/`false` (also `yes`/`no`, `1`/`0`), or `default`.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for anything else.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key) {
            Some(v) => match v.as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" => Ok(false),
                _ => Err(self.bad(key, &v, "true or false")),
            },
            None => Ok(default),
        }
    }

    /// One of `choices`, or `default`.
    ///
    /// # Errors
    /// [`TrainError::Spec`] naming the valid choices.
    pub fn choice(&mut self, key: &str, choices: &[&str], default: &str) -> Result<String> {
        match self.take(key) {
            Some(v) if choices.contains(&v.as_str()) => Ok(v),
            Some(v) => Err(TrainError::Spec(format!(
                "'{}': {key}={v} is not one of {}",
                self.text,
                choices.join(", ")
            ))),
            None => Ok(default.to_string()),
        }
    }

    /// A `+`-separated list, empty when absent.
    pub fn list(&mut self, key: &str) -> Vec<String> {
        self.take(key)
            .map(|v| {
                v.split('+')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The positional arguments not yet read, in order, marking them read.
    pub fn positionals(&mut self) -> Vec<String> {
        self.args
            .iter_mut()
            .filter(|(k, _, used)| k.is_none() && !*used)
            .map(|(_, v, used)| {
                *used = true;
                v.clone()
            })
            .collect()
    }

    /// For a wrapper: the inner spec (first positional) with every argument
    /// the wrapper did not read, marking them all read.
    ///
    /// # Errors
    /// [`TrainError::Spec`] when there is no inner spec.
    pub fn inner(&mut self, example: &str) -> Result<Spec> {
        let mut head: Option<String> = None;
        let mut rest = Vec::new();
        for (k, v, used) in self.args.iter_mut().filter(|(_, _, used)| !*used) {
            *used = true;
            match (k, head.is_none()) {
                (None, true) => head = Some(v.clone()),
                (Some(k), _) => rest.push(format!("{k}={v}")),
                (None, false) => rest.push(v.clone()),
            }
        }
        let Some(head) = head else {
            return Err(TrainError::Spec(format!(
                "'{}': {} wraps another data spec, as in {example}",
                self.text, self.name
            )));
        };
        let joined = if rest.is_empty() {
            head
        } else if head.contains(':') {
            format!("{head},{}", rest.join(","))
        } else {
            format!("{head}:{}", rest.join(","))
        };
        Spec::parse(&joined)
    }

    /// Checks that every argument was read.
    ///
    /// # Errors
    /// [`TrainError::Spec`] naming the first unknown key and the valid ones
    /// (the keys the parser asked for).
    pub fn finish(&self) -> Result<()> {
        let valid = &self.asked;
        if let Some((k, v, _)) = self.args.iter().find(|(_, _, used)| !used) {
            let what = match k {
                Some(k) => format!("unknown key '{k}'"),
                None => format!("unexpected argument '{v}'"),
            };
            let valid = if valid.is_empty() {
                "none".to_string()
            } else {
                valid.join(", ")
            };
            return Err(TrainError::Spec(format!(
                "'{}': {what} for {}; valid keys: {valid}",
                self.text, self.name
            )));
        }
        Ok(())
    }
}

/// Splits on commas that are not inside an inner spec's own arguments:
/// plain comma splitting, since inner arguments are re-joined by [`Spec::inner`].
fn split_args(rest: &str) -> Vec<&str> {
    rest.split(',').map(str::trim).collect()
}

/// An unknown name, listing the valid ones.
pub fn unknown(kind: &str, name: &str, valid: &[&str]) -> TrainError {
    TrainError::Spec(format!(
        "unknown {kind} '{name}'; valid {kind}s: {}",
        valid.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_renames_and_sets_one_key_keeping_the_rest() {
        let s = Spec::parse("plain-resnet:depth=56,bn=true,aux=stage1+stage2").unwrap();
        assert_eq!(
            s.rewritten("resnet", Some(("depth", "8"))),
            "resnet:depth=8,bn=true,aux=stage1+stage2"
        );
        let bare = Spec::parse("plain-cnn").unwrap();
        assert_eq!(
            bare.rewritten("plain-cnn", Some(("depth", "2"))),
            "plain-cnn:depth=2"
        );
        // Round trip of a rewritten spec.
        let again = Spec::parse(&s.rewritten("resnet", Some(("width", "4")))).unwrap();
        assert_eq!(
            again.rewritten("resnet", None),
            "resnet:depth=56,bn=true,aux=stage1+stage2,width=4"
        );
    }

    #[test]
    fn parses_keys_positionals_and_lists() {
        let mut s = Spec::parse("resnet:depth=20,aux=stage1+stage2").unwrap();
        assert_eq!(s.name, "resnet");
        assert_eq!(s.usize("depth", 0).unwrap(), 20);
        assert_eq!(s.list("aux"), ["stage1", "stage2"]);
        assert_eq!(s.usize("width", 16).unwrap(), 16);
        s.finish().unwrap();

        let mut s = Spec::parse("idx:a.gz,b.gz").unwrap();
        assert_eq!(s.positionals(), ["a.gz", "b.gz"]);
        s.finish().unwrap();
    }

    #[test]
    fn wrappers_pass_other_keys_to_the_inner_spec() {
        let mut s = Spec::parse("subset:digits:size=16,frac=0.1").unwrap();
        assert_eq!(s.f64("frac", 1.0).unwrap(), 0.1);
        let mut inner = s.inner("subset:digits,frac=0.1").unwrap();
        assert_eq!(inner.name, "digits");
        assert_eq!(inner.usize("size", 8).unwrap(), 16);
        s.finish().unwrap();
        inner.finish().unwrap();

        let mut s = Spec::parse("shuffled:patterns,signal=0.5").unwrap();
        let mut inner = s.inner("shuffled:digits").unwrap();
        assert_eq!(inner.f64("signal", 1.0).unwrap(), 0.5);
        assert!(Spec::parse("shuffled")
            .unwrap()
            .inner("shuffled:digits")
            .is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let mut s = Spec::parse("resnet:depht=20").unwrap();
        let _ = s.usize("depth", 20).unwrap();
        let _ = s.usize("width", 16).unwrap();
        let e = s.finish().unwrap_err().to_string();
        assert!(e.contains("depht") && e.contains("depth, width"), "{e}");
        let mut s = Spec::parse("resnet:depth=twenty").unwrap();
        assert!(s
            .usize("depth", 20)
            .unwrap_err()
            .to_string()
            .contains("whole number"));
        let mut s = Spec::parse("x:lr=nan").unwrap();
        assert!(s.f64("lr", 0.1).is_err());
        assert!(Spec::parse(":depth=3").is_err());
        assert!(Spec::parse("resnet:depth=3,,width=2").is_err());
        let e = Spec::parse("resnet:depth=8,depth=20")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate key 'depth'"), "{e}");
        let mut s = Spec::parse("m:act=swish").unwrap();
        let e = s
            .choice("act", &["relu", "tanh"], "relu")
            .unwrap_err()
            .to_string();
        assert!(e.contains("relu, tanh"), "{e}");
    }
}

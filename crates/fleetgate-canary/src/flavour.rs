//! Which gateway's canary semantics to follow.
//!
//! Users arrive with canary Ingresses written for either ingress-nginx or
//! Higress/MSE, and the two read the same annotations differently (one canary
//! per route or many, `always|value` regex or plain equality, `never` or no
//! `never`). Rather than guess, the gateway is configured with one flavour and
//! every route is compiled for it.

use std::fmt;
use std::str::FromStr;

/// The canary semantics a route is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Flavour {
    /// Higress / MSE Ingress: any number of canaries per route, match canaries
    /// (header, query, cookie) before weight canaries, `always|<value>` regex
    /// values. The default.
    #[default]
    Mse,
    /// ingress-nginx: at most one canary per route, combining header, cookie
    /// and weight, with `always` / `never` and exact header values.
    Nginx,
}

impl Flavour {
    /// The name used in configuration files: `"mse"` or `"nginx"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Mse => "mse",
            Flavour::Nginx => "nginx",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flavour name that is neither `mse` nor `nginx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFlavour {
    /// The name as given.
    pub value: String,
}

impl fmt::Display for UnknownFlavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown canary flavour {:?}: expected \"mse\" or \"nginx\"",
            self.value
        )
    }
}

impl std::error::Error for UnknownFlavour {}

impl FromStr for Flavour {
    type Err = UnknownFlavour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mse" => Ok(Flavour::Mse),
            "nginx" => Ok(Flavour::Nginx),
            other => Err(UnknownFlavour {
                value: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_displays_and_defaults() {
        assert_eq!(Flavour::default(), Flavour::Mse);
        for flavour in [Flavour::Mse, Flavour::Nginx] {
            assert_eq!(flavour.to_string().parse::<Flavour>(), Ok(flavour));
        }
        let err = "istio".parse::<Flavour>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown canary flavour \"istio\": expected \"mse\" or \"nginx\""
        );
        assert!("MSE".parse::<Flavour>().is_err());
    }
}

//! Label sets and their fingerprints.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A set of label name/value pairs, ordered by name.
///
/// The [`fingerprint`](Labels::fingerprint) is computed exactly as Prometheus' `model.LabelSet`
/// does (64-bit FNV-1a over sorted names and values, each followed by the byte `0xff`), so an alert
/// has the same fingerprint in Vigil as in Alertmanager.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(pub BTreeMap<String, String>);

/// A label set's 64-bit fingerprint, shown as 16 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl Labels {
    /// An empty label set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a label set from pairs; later pairs win.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Sets a label; an empty value removes it (as in Prometheus, an empty label is no label).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        let name = name.into();
        if value.is_empty() {
            self.0.remove(&name);
        } else {
            self.0.insert(name, value);
        }
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The Alertmanager/Prometheus fingerprint of this label set.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = FNV_OFFSET;
        for (k, v) in &self.0 {
            h = fnv_add(h, k.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
            h = fnv_add(h, v.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
        }
        Fingerprint(h)
    }
}

impl fmt::Display for Labels {
    /// Prometheus notation: `{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Fingerprint)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_alert_has_alertmanager_fingerprint() {
        let l = Labels::from_pairs([
            ("alertname", "monitor_service_down"),
            ("instance", "cadvisor:8080"),
            ("job", "cadvisor"),
            ("monitor", "docker-host-alpha"),
            ("severity", "critical"),
        ]);
        assert_eq!(l.fingerprint().to_string(), "e960cfc9079ae255");
    }

    #[test]
    fn empty_set_is_fnv_offset() {
        assert_eq!(Labels::new().fingerprint().0, FNV_OFFSET);
    }

    #[test]
    fn fingerprint_roundtrips_through_text() {
        let f = Fingerprint(0x00ab_cdef_0123_4567);
        assert_eq!(f.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<Fingerprint>().unwrap(), f);
    }

    #[test]
    fn empty_value_removes_label() {
        let mut l = Labels::from_pairs([("a", "1")]);
        l.set("a", "");
        assert!(l.is_empty());
    }

    #[test]
    fn display_is_prometheus_notation() {
        let l = Labels::from_pairs([("b", "2"), ("a", "x\"y")]);
        assert_eq!(l.to_string(), r#"{a="x\"y", b="2"}"#);
    }
}

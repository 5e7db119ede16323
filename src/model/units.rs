//! Amounts: CPU in millicores and memory in bytes, with the units the department file accepts.

use std::fmt;

/// An amount of CPU, stored in millicores (1000 = one core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cpu(u32);

impl Cpu {
    /// `millis` thousandths of a core.
    pub const fn from_millis(millis: u32) -> Self {
        Self(millis)
    }

    /// Millicores.
    pub const fn millis(self) -> u32 {
        self.0
    }

    /// Parses `"0.5"`, `"2"`, `"500m"` (Kubernetes style), or a TOML number given as text.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(m) = text.strip_suffix('m') {
            return m.parse::<u32>().ok().filter(|m| *m > 0).map(Self);
        }
        Self::from_cores(text.parse::<f64>().ok()?)
    }

    /// From a number of cores; `None` unless positive, finite and at most 1024.
    fn from_cores(cores: f64) -> Option<Self> {
        if !(cores.is_finite() && cores > 0.0 && cores <= 1024.0) {
            return None;
        }
        let millis = (cores * 1000.0).round() as u32;
        (millis > 0).then_some(Self(millis))
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            let text = format!("{:.3}", f64::from(self.0) / 1000.0);
            write!(f, "{}", text.trim_end_matches('0'))
        }
    }
}

/// An amount of memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

pub(crate) const KIB: u64 = 1024;
pub(crate) const MIB: u64 = KIB * 1024;
pub(crate) const GIB: u64 = MIB * 1024;

impl ByteSize {
    /// `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// `mib` MiB.
    pub const fn mib(mib: u64) -> Self {
        Self(mib * MIB)
    }

    /// Bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"512MiB"`, `"2GiB"`, `"768Mi"` (Kubernetes), `"1G"`, `"64M"` (JVM style, binary),
    /// or a plain number of bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let factor = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" | "Ki" | "KiB" | "k" => KIB,
            "M" | "MB" | "Mi" | "MiB" | "m" => MIB,
            "G" | "GB" | "Gi" | "GiB" | "g" => GIB,
            _ => return None,
        };
        number.checked_mul(factor).map(Self)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= GIB && b.is_multiple_of(GIB) {
            write!(f, "{}GiB", b / GIB)
        } else if b >= MIB && b.is_multiple_of(MIB) {
            write!(f, "{}MiB", b / MIB)
        } else if b >= KIB && b.is_multiple_of(KIB) {
            write!(f, "{}KiB", b / KIB)
        } else {
            write!(f, "{b}B")
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_in_every_accepted_unit() {
        assert_eq!(ByteSize::parse("512MiB"), Some(ByteSize::mib(512)));
        assert_eq!(ByteSize::parse("768Mi"), Some(ByteSize::mib(768)));
        assert_eq!(ByteSize::parse("2GiB"), Some(ByteSize::new(2 * GIB)));
        assert_eq!(ByteSize::parse("1G"), Some(ByteSize::new(GIB)));
        assert_eq!(ByteSize::parse("4096"), Some(ByteSize::new(4096)));
        assert_eq!(ByteSize::parse("12XB"), None);
        assert_eq!(ByteSize::parse("MiB"), None);
        assert_eq!(ByteSize::parse("99999999999999GiB"), None);
    }

    #[test]
    fn byte_sizes_display_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::mib(1536).to_string(), "1536MiB");
        assert_eq!(ByteSize::mib(2048).to_string(), "2GiB");
        assert_eq!(ByteSize::new(1000).to_string(), "1000B");
    }

    #[test]
    fn cpu_parses_cores_and_millicores() {
        assert_eq!(Cpu::parse("0.5"), Some(Cpu::from_millis(500)));
        assert_eq!(Cpu::parse("1500m"), Some(Cpu::from_millis(1500)));
        assert_eq!(Cpu::parse("2"), Some(Cpu::from_millis(2000)));
        assert_eq!(Cpu::parse("0"), None);
        assert_eq!(Cpu::parse("-1"), None);
        assert_eq!(Cpu::from_millis(1500).to_string(), "1.5");
        assert_eq!(Cpu::from_millis(2000).to_string(), "2");
    }
}

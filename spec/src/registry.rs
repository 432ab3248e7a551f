//! The vendor-id registry of `spec/VENDORS.md`, as data: the generator
//! renders it into VENDORS.md and into `#define`s of the C header, so the
//! two cannot disagree.

/// One assigned vendor id, or a reserved range of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorRegistration {
    /// First id of the assignment.
    pub first: u32,
    /// Last id of the assignment (equal to `first` for a single id).
    pub last: u32,
    /// Suffix of the C macro `XSPLICE_VENDOR_ID_<suffix>` naming `first`,
    /// if any.
    pub c_suffix: Option<&'static str>,
    /// Who holds the id, or what the range is for.
    pub holder: &'static str,
}

/// Every registration, in id order. Adding a vendor is a pull request
/// adding one entry here and regenerating (see `spec/VENDORS.md`).
pub static VENDOR_REGISTRY: [VendorRegistration; 4] = [
    VendorRegistration {
        first: 0,
        last: 0,
        c_suffix: Some("RESERVED"),
        holder: "reserved: never valid in an entry (a loader refuses it)",
    },
    VendorRegistration {
        first: 1,
        last: 1,
        c_suffix: Some("XSPLICE"),
        holder: "xsplice project, examples and tests",
    },
    VendorRegistration {
        first: 2,
        last: 0x7FFF_FFFF,
        c_suffix: None,
        holder: "unassigned: obtained by a pull request to this table",
    },
    VendorRegistration {
        first: xsplice_abi::vendor::VendorId::PRIVATE_START,
        last: 0xFFFF_FFFF,
        c_suffix: Some("PRIVATE_START"),
        holder: "private and experimental use: no registration, no uniqueness",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_tiles_the_id_space() {
        let mut next = 0u64;
        for r in &VENDOR_REGISTRY {
            assert_eq!(u64::from(r.first), next, "{r:?}");
            assert!(r.last >= r.first);
            next = u64::from(r.last) + 1;
        }
        assert_eq!(next, 1 << 32);
    }
}

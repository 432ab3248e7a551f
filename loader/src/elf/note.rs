//! ELF note framing: `namesz`, `descsz`, `type`, then the name and the
//! descriptor, each padded to 4 bytes. Used for `.note.xsplice`,
//! `.xsplice.depends` and `.note.gnu.build-id`.

/// One note, borrowing from the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Note<'a> {
    /// The name, NUL included as stored.
    pub name: &'a [u8],
    /// Note type.
    pub ntype: u32,
    /// Descriptor bytes.
    pub desc: &'a [u8],
}

/// GNU build-id note type.
pub(crate) const NT_GNU_BUILD_ID: u32 = xsplice_abi::sections::BUILD_ID_NOTE_TYPE;
/// GNU note name.
pub(crate) const GNU_NAME: &[u8] = xsplice_abi::sections::BUILD_ID_NOTE_NAME;

/// One ELF note as bytes: `namesz`, `descsz`, `type`, the name and the
/// descriptor each padded to 4 (what [`notes`] reads). `None` when a size
/// does not fit the u32 fields.
#[cfg(feature = "write")]
pub(crate) fn frame(name: &[u8], ntype: u32, desc: &[u8]) -> Option<alloc::vec::Vec<u8>> {
    let name_end = 12usize.checked_add(pad4(name.len())?)?;
    let size = name_end.checked_add(pad4(desc.len())?)?;
    let mut v = alloc::vec::Vec::with_capacity(size);
    v.extend(u32::try_from(name.len()).ok()?.to_le_bytes());
    v.extend(u32::try_from(desc.len()).ok()?.to_le_bytes());
    v.extend(ntype.to_le_bytes());
    v.extend(name);
    v.resize(name_end, 0);
    v.extend(desc);
    v.resize(size, 0);
    Some(v)
}

fn pad4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// Walks the notes of a section; stops with an error at the first malformed one.
pub(crate) fn notes(section: &[u8]) -> impl Iterator<Item = Result<Note<'_>, &'static str>> {
    let mut at = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || at >= section.len() {
            return None;
        }
        let item = (|| {
            let truncated = "truncated note header";
            let name_at = at.checked_add(12).ok_or(truncated)?;
            let header = section.get(at..name_at).ok_or(truncated)?;
            let namesz = u32_at(header, 0).ok_or(truncated)? as usize;
            let descsz = u32_at(header, 4).ok_or(truncated)? as usize;
            let ntype = u32_at(header, 8).ok_or(truncated)?;
            let name = section
                .get(name_at..name_at.checked_add(namesz).ok_or("name size overflows")?)
                .ok_or("note name runs past the section")?;
            let desc_at = pad4(namesz)
                .and_then(|n| name_at.checked_add(n))
                .ok_or("name size overflows")?;
            let desc = section
                .get(
                    desc_at
                        ..desc_at
                            .checked_add(descsz)
                            .ok_or("descriptor size overflows")?,
                )
                .ok_or("note descriptor runs past the section")?;
            let next = pad4(descsz)
                .and_then(|n| desc_at.checked_add(n))
                .ok_or("descriptor size overflows")?;
            Ok((Note { name, ntype, desc }, next))
        })();
        match item {
            Ok((note, next)) => {
                at = next;
                Some(Ok(note))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// The descriptor of the single GNU build-id note of a section.
pub(crate) fn build_id(section: &[u8]) -> Result<&[u8], &'static str> {
    let mut found = None;
    for note in notes(section) {
        let note = note?;
        if note.name == GNU_NAME && note.ntype == NT_GNU_BUILD_ID {
            if found.is_some() {
                return Err("more than one build-id note");
            }
            found = Some(note.desc);
        }
    }
    match found {
        Some([]) => Err("empty build-id"),
        Some(id) => Ok(id),
        None => Err("no GNU build-id note (name \"GNU\", type 3)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_bounds() {
        let mut s = alloc::vec::Vec::new();
        s.extend(4u32.to_le_bytes());
        s.extend(3u32.to_le_bytes());
        s.extend(3u32.to_le_bytes());
        s.extend(GNU_NAME);
        s.extend([1, 2, 3, 0]);
        assert_eq!(build_id(&s), Ok(&[1u8, 2, 3][..]));
        s[4] = 200;
        assert_eq!(build_id(&s), Err("note descriptor runs past the section"));
        assert_eq!(build_id(&s[..5]), Err("truncated note header"));
        s[0] = 0xff;
        s[1] = 0xff;
        s[2] = 0xff;
        s[3] = 0xff;
        assert!(build_id(&s).is_err());
    }
}

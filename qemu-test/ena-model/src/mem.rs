//! Guest memory as the device sees it: an interval map from IOVA to host
//! mappings. QEMU hands us guest RAM as memfd-backed DMA_MAP messages; ROM
//! areas come without an fd and are recorded as "not accessible". Every
//! device-side access is checked against the map and refused (as a DMA
//! error) when any byte of it falls outside one fd-backed, suitably
//! permitted mapping.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{Ordering, fence};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaError {
    pub addr: u64,
    pub len: u64,
    pub write: bool,
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA {} of {} bytes at {:#x} outside the guest's fd-backed mappings",
            if self.write { "write" } else { "read" },
            self.len,
            self.addr
        )
    }
}

enum Backing {
    /// A `mmap` of a file descriptor QEMU sent us; unmapped on drop.
    Mmap { base: *mut libc::c_void, len: usize },
    /// Plain host memory (host-side tests use this as fake guest RAM).
    #[cfg(test)]
    Heap(#[allow(dead_code)] Box<[u8]>),
    /// A mapping that came without an fd: known, but not accessible.
    NoFd,
}

struct Region {
    len: u64,
    ptr: *mut u8,
    readable: bool,
    writable: bool,
    backing: Backing,
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Mmap { base, len } = self.backing {
            // SAFETY: `base`/`len` are exactly what a successful mmap returned and
            // nothing else refers to the mapping once the region is dropped (all
            // accesses go through `&self` of the owning map).
            unsafe {
                libc::munmap(base, len);
            }
        }
    }
}

/// IOVA → host mapping table of one vfio-user connection.
#[derive(Default)]
pub struct DmaMap {
    regions: BTreeMap<u64, Region>,
}

// SAFETY: the raw pointers refer to mappings owned by the map itself; all
// access goes through the map, which the device keeps behind a mutex.
unsafe impl Send for DmaMap {}

pub const DMA_READ: u32 = 1;
pub const DMA_WRITE: u32 = 2;

impl DmaMap {
    pub fn new() -> Self {
        Self::default()
    }

    fn overlaps(&self, iova: u64, len: u64) -> bool {
        let end = iova.saturating_add(len);
        if let Some((&s, r)) = self.regions.range(..end).next_back() {
            return s.saturating_add(r.len) > iova;
        }
        false
    }

    /// Map `size` bytes of `fd` at `offset` for DMA at `iova`. With no fd
    /// the range is recorded but never accessible.
    pub fn map(
        &mut self,
        iova: u64,
        size: u64,
        fd: Option<OwnedFd>,
        offset: u64,
        prot: u32,
    ) -> Result<(), String> {
        if size == 0 || iova.checked_add(size).is_none() {
            return Err(format!("bad DMA range iova {iova:#x} size {size:#x}"));
        }
        if self.overlaps(iova, size) {
            return Err(format!(
                "DMA map iova {iova:#x} size {size:#x} overlaps an existing mapping"
            ));
        }
        let region = match fd {
            None => Region {
                len: size,
                ptr: std::ptr::null_mut(),
                readable: false,
                writable: false,
                backing: Backing::NoFd,
            },
            Some(fd) => {
                let len = usize::try_from(size).map_err(|_| "DMA size too large".to_string())?;
                let off = libc::off_t::try_from(offset).map_err(|_| "bad fd offset".to_string())?;
                let mut p = 0;
                if prot & DMA_READ != 0 {
                    p |= libc::PROT_READ;
                }
                if prot & DMA_WRITE != 0 {
                    p |= libc::PROT_WRITE;
                }
                // SAFETY: plain mmap of a caller-provided fd; the result is checked
                // and owned by the region from here on.
                let base = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        p,
                        libc::MAP_SHARED,
                        fd.as_raw_fd(),
                        off,
                    )
                };
                if base == libc::MAP_FAILED {
                    return Err(format!(
                        "mmap of DMA region iova {iova:#x} size {size:#x} failed: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                Region {
                    len: size,
                    ptr: base.cast(),
                    readable: prot & DMA_READ != 0,
                    writable: prot & DMA_WRITE != 0,
                    backing: Backing::Mmap { base, len },
                }
            }
        };
        self.regions.insert(iova, region);
        Ok(())
    }

    /// Fake guest RAM for host-side tests.
    #[cfg(test)]
    pub fn map_heap(&mut self, iova: u64, size: usize) -> Result<(), String> {
        if self.overlaps(iova, size as u64) {
            return Err("overlap".into());
        }
        let mut b = vec![0u8; size].into_boxed_slice();
        let ptr = b.as_mut_ptr();
        self.regions.insert(
            iova,
            Region {
                len: size as u64,
                ptr,
                readable: true,
                writable: true,
                backing: Backing::Heap(b),
            },
        );
        Ok(())
    }

    /// Remove every mapping that lies in `[iova, iova+size)`. Returns how many
    /// were removed. A mapping only partly covered is removed too (vfio does
    /// not split mappings), and that is reported.
    pub fn unmap(&mut self, iova: u64, size: u64) -> (usize, bool) {
        let end = iova.saturating_add(size);
        let keys: Vec<u64> = self
            .regions
            .range(..end)
            .filter(|(s, r)| s.saturating_add(r.len) > iova)
            .map(|(&s, _)| s)
            .collect();
        let mut partial = false;
        for k in &keys {
            if let Some(r) = self.regions.remove(k) {
                partial |= *k < iova || k.saturating_add(r.len) > end;
            }
        }
        (keys.len(), partial)
    }

    pub fn unmap_all(&mut self) {
        self.regions.clear();
    }

    /// Number of mappings (for status output).
    pub fn count(&self) -> usize {
        self.regions.len()
    }

    fn lookup(&self, addr: u64, len: usize, write: bool) -> Result<*mut u8, DmaError> {
        let err = DmaError {
            addr,
            len: len as u64,
            write,
        };
        let end = addr.checked_add(len as u64).ok_or(err)?;
        let (&start, r) = self.regions.range(..=addr).next_back().ok_or(err)?;
        if end > start.saturating_add(r.len) || r.ptr.is_null() {
            return Err(err);
        }
        if (write && !r.writable) || (!write && !r.readable) {
            return Err(err);
        }
        // `addr - start < r.len` was established above, so the offset is in range.
        let off = (addr - start) as usize;
        // SAFETY: `off + len <= r.len`, the size of the live mapping at `r.ptr`.
        Ok(unsafe { r.ptr.add(off) })
    }

    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        if buf.is_empty() {
            return Ok(());
        }
        let p = self.lookup(addr, buf.len(), false)?;
        // SAFETY: `p..p+len` lies inside a live readable mapping (checked by
        // lookup); the guest may change it concurrently, which only affects the
        // bytes we see, as with real DMA.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        if data.is_empty() {
            return Ok(());
        }
        let p = self.lookup(addr, data.len(), true)?;
        // SAFETY: `p..p+len` lies inside a live writable mapping (checked by lookup).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Write `data`, making the bytes `key` visible only after all others
    /// (a release fence between): used for entries whose phase bit or
    /// request id tells the driver that the rest is valid.
    pub fn publish(
        &self,
        addr: u64,
        data: &[u8],
        key: std::ops::Range<usize>,
    ) -> Result<(), DmaError> {
        if key.start > key.end || key.end > data.len() {
            return Err(DmaError {
                addr,
                len: data.len() as u64,
                write: true,
            });
        }
        // Check the whole range first so that nothing is written on failure.
        self.lookup(addr, data.len(), true)?;
        self.write(addr, &data[..key.start])?;
        self.write(addr + key.end as u64, &data[key.end..])?;
        fence(Ordering::Release);
        self.write(addr + key.start as u64, &data[key.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_outside_and_straddling() {
        let mut m = DmaMap::new();
        m.map_heap(0x1000, 0x1000).unwrap();
        m.map_heap(0x2000, 0x1000).unwrap();
        let mut b = [0u8; 16];
        assert!(m.read(0x1000, &mut b).is_ok());
        assert!(
            m.read(0x0ff8, &mut b).is_err(),
            "starts before the first mapping"
        );
        assert!(
            m.read(0x1ff8, &mut b).is_err(),
            "straddles two mappings: must be refused"
        );
        assert!(m.read(0x3000, &mut b).is_err(), "past the end");
        assert!(m.read(u64::MAX - 4, &mut b).is_err(), "address wraps");
        m.map(0x10000, 0x1000, None, 0, DMA_READ).unwrap();
        assert!(m.read(0x10000, &mut b).is_err(), "mapping without fd");
    }

    #[test]
    fn overlap_and_unmap() {
        let mut m = DmaMap::new();
        m.map_heap(0x1000, 0x2000).unwrap();
        assert!(
            m.map_heap(0x2000, 0x1000).is_err(),
            "overlap must be refused"
        );
        assert_eq!(m.unmap(0x1000, 0x2000), (1, false));
        assert!(m.read(0x1000, &mut [0u8; 4]).is_err());
        m.map_heap(0x1000, 0x1000).unwrap();
        assert_eq!(m.unmap(0x0, 0x1800), (1, true));
    }

    #[test]
    fn memfd_mapping_roundtrip() {
        // SAFETY: memfd_create with a static NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"t".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd was just created and is owned from here.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: resize the memfd we own.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), 8192) }, 0);
        let mut m = DmaMap::new();
        m.map(0x4000, 4096, Some(fd), 4096, DMA_READ | DMA_WRITE)
            .unwrap();
        m.publish(0x4000, &[1, 2, 3, 4, 5, 6, 7, 8], 0..2).unwrap();
        let mut b = [0u8; 8];
        m.read(0x4000, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(m.write(0x5000, &[0]).is_err());
    }
}

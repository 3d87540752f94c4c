//! Reading IDX files, the format of the MNIST distribution (and Fashion-MNIST, EMNIST, ...),
//! gzip-compressed or not.
//!
//! An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), the
//! dimensions as big-endian `u32`, then the elements in row-major order. Only the unsigned-byte
//! type (code `0x08`) is supported, which is what every MNIST-style image and label file uses.
//!
//! Every length is checked against the header before anything is allocated from it, and the
//! body may be at most [`MAX_IDX_BYTES`] long, so a forged header or a gzip bomb yields an
//! error instead of exhausting memory.

use std::io::{self, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use tensor::{Element, Tensor};

use crate::error::{DataError, Result};

/// The largest IDX body (number of elements, which are bytes) accepted: 2 GiB.
///
/// That is four times the largest public MNIST-style file (EMNIST ByClass, about 550 MB of
/// pixels), and it bounds the memory a forged header or a gzip bomb can make [`read_idx`]
/// use: a compressed file is decompressed only as far as its header says, and never beyond
/// this limit.
pub const MAX_IDX_BYTES: usize = 1 << 31;

/// The type code of unsigned bytes, the only element type supported.
const TYPE_U8: u8 = 0x08;

/// The longest possible header: the magic and 255 dimensions.
const MAX_HEADER_BYTES: usize = 4 + 4 * 255;

/// The contents of an IDX file of unsigned bytes: the dimensions and the elements in
/// row-major order (`data.len()` is the product of `dims`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, outermost first (for MNIST images: count, rows, columns).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

impl Idx {
    /// The file's magic number: `0x0000_0800` plus the number of dimensions (`0x0803` for
    /// images, `0x0801` for labels).
    pub fn magic(&self) -> u32 {
        magic_of(self.dims.len())
    }
}

fn magic_of(ndims: usize) -> u32 {
    (u32::from(TYPE_U8) << 8) | (ndims as u32 & 0xff)
}

/// What the header says: the dimensions, the header length and the body length they imply.
struct Header {
    dims: Vec<usize>,
    header_len: usize,
    body_len: usize,
}

/// Reads an IDX file, decompressing it first if it is gzip-compressed (starts with the gzip
/// magic `0x1f 0x8b`), so that the files as downloaded and as unpacked both work.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Format`] for a corrupt gzip stream, a
/// header that is not IDX of unsigned bytes, or a body whose length is not what the
/// dimensions say (or more than [`MAX_IDX_BYTES`]).
///
/// ```
/// use data::read_idx;
/// let labels = read_idx(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/../../data/mnist-10k-labels-idx1-ubyte.gz"
/// ))
/// .unwrap();
/// assert_eq!(labels.dims, [10_000]);
/// assert_eq!(labels.magic(), 0x0000_0801);
/// assert!(labels.data.iter().all(|&d| d < 10));
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_idx(&raw, path)
}

/// The content of an IDX file, gzipped or not (what [`read_idx`] does after reading the
/// file); `source` only names it in error messages. The entry point for data already in
/// memory, and for fuzzing.
///
/// # Errors
/// [`DataError::Format`] as for [`read_idx`].
pub fn decode_idx(bytes: &[u8], source: &Path) -> Result<Idx> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_gzipped(bytes, source)
    } else {
        parse_idx(bytes, source)
    }
}

/// Parses the bytes of an uncompressed IDX file; `source` only names the file in error
/// messages. This is the whole of [`read_idx`] after reading (and decompressing) the file, and
/// the entry point for tests and fuzzing.
///
/// # Errors
/// [`DataError::Format`] as for [`read_idx`].
///
/// ```
/// use std::path::Path;
/// use data::parse_idx;
/// // Two labels: magic 0x00000801, one dimension of 2, then the bytes 7 and 3.
/// let bytes = [0, 0, 8, 1, 0, 0, 0, 2, 7, 3];
/// let idx = parse_idx(&bytes, Path::new("labels.idx")).unwrap();
/// assert_eq!(idx.dims, [2]);
/// assert_eq!(idx.data, [7, 3]);
///
/// let err = parse_idx(&bytes[..9], Path::new("labels.idx")).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "labels.idx: body is 1 bytes, expected 2 (the product of the dimensions [2])"
/// );
/// ```
pub fn parse_idx(bytes: &[u8], source: &Path) -> Result<Idx> {
    let header = parse_header(bytes, source)?;
    let body = &bytes[header.header_len..];
    if body.len() != header.body_len {
        return Err(body_length_error(source, &header, &body.len().to_string()));
    }
    Ok(Idx {
        dims: header.dims,
        data: body.to_vec(),
    })
}

/// Decompresses a gzip-compressed IDX file, reading only as much as the header says.
fn read_gzipped(raw: &[u8], source: &Path) -> Result<Idx> {
    let gzip_error = |e: io::Error| {
        DataError::format(
            source,
            None,
            format!("corrupt or truncated gzip stream: {e}"),
        )
    };
    let mut decoder = MultiGzDecoder::new(raw);
    let mut prefix = Vec::new();
    (&mut decoder)
        .take(4)
        .read_to_end(&mut prefix)
        .map_err(gzip_error)?;
    if prefix.len() == 4 {
        let dims_len = 4 * usize::from(prefix[3]);
        (&mut decoder)
            .take(dims_len as u64)
            .read_to_end(&mut prefix)
            .map_err(gzip_error)?;
    }
    let header = parse_header(&prefix, source)?;
    debug_assert_eq!(prefix.len(), header.header_len);
    // The vector grows with the data that actually comes, so a header that claims more than
    // the stream holds costs no more memory than the stream.
    let mut data = Vec::new();
    (&mut decoder)
        .take(header.body_len as u64)
        .read_to_end(&mut data)
        .map_err(gzip_error)?;
    if data.len() < header.body_len {
        return Err(body_length_error(source, &header, &data.len().to_string()));
    }
    // Count (without storing) whatever follows; this also reads to the end of the stream, so
    // that its checksum is verified.
    let limit = (MAX_IDX_BYTES - header.body_len) as u64 + 1;
    let extra = io::copy(&mut (&mut decoder).take(limit), &mut io::sink()).map_err(gzip_error)?;
    if extra > 0 {
        let got = if extra >= limit {
            format!("more than {MAX_IDX_BYTES}")
        } else {
            (header.body_len as u64 + extra).to_string()
        };
        return Err(body_length_error(source, &header, &got));
    }
    Ok(Idx {
        dims: header.dims,
        data,
    })
}

/// Checks the magic and dimensions at the start of `bytes` (which may hold just the header).
fn parse_header(bytes: &[u8], source: &Path) -> Result<Header> {
    let err = |message: String| DataError::format(source, None, message);
    if bytes.len() < 4 {
        return Err(err(format!(
            "file is {} bytes long, too short for an IDX header (expected at least 4 bytes of \
             magic number)",
            bytes.len()
        )));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err(format!(
            "wrong magic number 0x{magic:08X}: expected an IDX file, which starts with two zero \
             bytes (e.g. 0x00000803 for images, 0x00000801 for labels)"
        )));
    }
    let type_code = bytes[2];
    if type_code != TYPE_U8 {
        let name = match type_code {
            0x09 => "signed byte",
            0x0B => "16-bit integer",
            0x0C => "32-bit integer",
            0x0D => "32-bit float",
            0x0E => "64-bit float",
            _ => "not a valid IDX type",
        };
        return Err(err(format!(
            "unsupported IDX type code 0x{type_code:02X} ({name}) in magic 0x{magic:08X}; only \
             0x08 (unsigned byte) is supported"
        )));
    }
    let ndims = usize::from(bytes[3]);
    if ndims == 0 {
        return Err(err(format!(
            "magic 0x{magic:08X} declares 0 dimensions; expected at least 1"
        )));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(err(format!(
            "file is {} bytes long, too short for the IDX header of {ndims} dimensions \
             ({header_len} bytes)",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let body_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            err(format!(
                "dimensions {dims:?} describe more than {MAX_IDX_BYTES} bytes (the limit); \
                 the header is corrupt or the file too large"
            ))
        })?;
    debug_assert!(header_len <= MAX_HEADER_BYTES);
    Ok(Header {
        dims,
        header_len,
        body_len,
    })
}

fn body_length_error(source: &Path, header: &Header, got: &str) -> DataError {
    DataError::format(
        source,
        None,
        format!(
            "body is {got} bytes, expected {} (the product of the dimensions {:?})",
            header.body_len, header.dims
        ),
    )
}

/// Reads an IDX images file (magic `0x00000803`: count, rows, columns) into a tensor of shape
/// `[count, rows * cols]` with pixel values scaled from `0..=255` to `[0, 1]`, the input a
/// dense network expects.
///
/// # Errors
/// As [`read_idx`], and [`DataError::Format`] for an IDX file that does not have 3 dimensions.
///
/// ```
/// use data::load_mnist_images;
/// let x = load_mnist_images::<f32>(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/../../data/mnist-10k-images-idx3-ubyte.gz"
/// ))
/// .unwrap();
/// assert_eq!(x.shape(), &[10_000, 784]);
/// assert_eq!(x.max_all(), Some(1.0));
/// ```
pub fn load_mnist_images<T: Element>(path: impl AsRef<Path>) -> Result<Tensor<T>> {
    let path = path.as_ref();
    let idx = read_idx(path)?;
    if idx.dims.len() != 3 {
        return Err(wrong_kind(path, "images", 3, &idx));
    }
    let (count, pixels) = (idx.dims[0], idx.dims[1] * idx.dims[2]);
    let data: Vec<T> = idx
        .data
        .iter()
        .map(|&b| T::from_f64_lossy(f64::from(b) / 255.0))
        .collect();
    Ok(Tensor::from_vec(data, &[count, pixels])?)
}

/// Reads an IDX labels file (magic `0x00000801`: count) into one class index per item.
///
/// # Errors
/// As [`read_idx`], and [`DataError::Format`] for an IDX file that does not have 1 dimension.
///
/// ```
/// use data::load_mnist_labels;
/// let y = load_mnist_labels(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/../../data/mnist-10k-labels-idx1-ubyte.gz"
/// ))
/// .unwrap();
/// assert_eq!(y.len(), 10_000);
/// assert_eq!(y.iter().filter(|&&d| d == 0).count(), 1001);
/// ```
pub fn load_mnist_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let idx = read_idx(path)?;
    if idx.dims.len() != 1 {
        return Err(wrong_kind(path, "labels", 1, &idx));
    }
    Ok(idx.data.into_iter().map(usize::from).collect())
}

fn wrong_kind(path: &Path, kind: &str, ndims: usize, idx: &Idx) -> DataError {
    DataError::format(
        path,
        None,
        format!(
            "expected an IDX {kind} file (magic 0x{:08X}), got magic 0x{:08X} (dimensions {:?})",
            magic_of(ndims),
            idx.magic(),
            idx.dims
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    const IMAGES: &str = "mnist-10k-images-idx3-ubyte.gz";
    const LABELS: &str = "mnist-10k-labels-idx1-ubyte.gz";

    fn data_file(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data")
            .join(name)
    }

    /// A file in the temporary directory with a name no other test (or test run) uses,
    /// removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "brick-nn-idx-{}-{}-{name}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn parse_err(bytes: &[u8]) -> String {
        parse_idx(bytes, Path::new("t.idx"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mnist_images_are_10000_by_784_in_unit_range() {
        let x = load_mnist_images::<f32>(data_file(IMAGES)).unwrap();
        assert_eq!(x.shape(), &[10_000, 784]);
        let v = x.as_slice().unwrap();
        assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(x.min_all(), Some(0.0));
        assert_eq!(x.max_all(), Some(1.0));
        // Digits are mostly background: the mean pixel of MNIST is about 0.13.
        let mean = x.mean_all();
        assert!((0.10..0.16).contains(&mean), "mean pixel {mean}");
    }

    #[test]
    fn mnist_labels_have_the_documented_class_counts() {
        let y = load_mnist_labels(data_file(LABELS)).unwrap();
        assert_eq!(y.len(), 10_000);
        let mut counts = [0usize; 10];
        for &d in &y {
            counts[d] += 1;
        }
        assert_eq!(
            counts,
            [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
    }

    #[test]
    fn images_and_labels_headers_match_the_idx_spec() {
        let images = read_idx(data_file(IMAGES)).unwrap();
        assert_eq!(images.dims, [10_000, 28, 28]);
        assert_eq!(images.magic(), 0x0000_0803);
        assert_eq!(images.data.len(), 10_000 * 784);
    }

    #[test]
    fn gzipped_and_uncompressed_files_read_the_same() {
        let gz = read_idx(data_file(LABELS)).unwrap();
        let raw = TempFile::new("labels-idx1-ubyte", &encode(&[10_000], &gz.data));
        let plain = read_idx(&raw.0).unwrap();
        assert_eq!(plain, gz);
        assert_eq!(
            load_mnist_labels(&raw.0).unwrap(),
            load_mnist_labels(data_file(LABELS)).unwrap()
        );

        let images = read_idx(data_file(IMAGES)).unwrap();
        let raw = TempFile::new(
            "images-idx3-ubyte",
            &encode(&[10_000, 28, 28], &images.data),
        );
        let x_raw = load_mnist_images::<f64>(&raw.0).unwrap();
        let x_gz = load_mnist_images::<f64>(data_file(IMAGES)).unwrap();
        assert_eq!(x_raw, x_gz);
        assert_eq!(x_raw.get(&[0, 0]), Some(f64::from(images.data[0]) / 255.0));
    }

    #[test]
    fn hand_built_buffer_round_trips() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode(&[2, 3, 4], &data);
        assert_eq!(&bytes[..8], &[0, 0, 8, 3, 0, 0, 0, 2]);
        let idx = parse_idx(&bytes, Path::new("t.idx")).unwrap();
        assert_eq!(idx.dims, [2, 3, 4]);
        assert_eq!(idx.data, data);
        assert_eq!(idx.magic(), 0x803);

        let file = TempFile::new("round-trip.gz", &gzip(&bytes));
        assert_eq!(read_idx(&file.0).unwrap(), idx);
        let x = load_mnist_images::<f32>(&file.0).unwrap();
        assert_eq!(x.shape(), &[2, 12]);
        assert_eq!(x.get(&[1, 11]), Some(23.0 / 255.0));
    }

    #[test]
    fn short_header_and_wrong_magic_are_errors() {
        assert_eq!(
            parse_err(&[0, 0, 8]),
            "t.idx: file is 3 bytes long, too short for an IDX header (expected at least 4 \
             bytes of magic number)"
        );
        assert_eq!(
            parse_err(&[0, 0, 8, 3, 0, 0, 0, 1, 0, 0]),
            "t.idx: file is 10 bytes long, too short for the IDX header of 3 dimensions (16 bytes)"
        );
        assert!(parse_err(b"PK\x03\x04rest").starts_with(
            "t.idx: wrong magic number 0x504B0304: expected an IDX file, which starts with two \
             zero bytes"
        ));
        assert_eq!(
            parse_err(&[0, 0, 8, 0]),
            "t.idx: magic 0x00000800 declares 0 dimensions; expected at least 1"
        );
    }

    #[test]
    fn unsupported_type_codes_are_named() {
        assert_eq!(
            parse_err(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
            "t.idx: unsupported IDX type code 0x0D (32-bit float) in magic 0x00000D01; only 0x08 \
             (unsigned byte) is supported"
        );
        assert!(parse_err(&[0, 0, 0x42, 1]).contains("0x42 (not a valid IDX type)"));
    }

    #[test]
    fn body_shorter_or_longer_than_the_dims_gives_both_lengths() {
        assert_eq!(
            parse_err(&encode(&[2, 3], &[1, 2, 3, 4, 5])),
            "t.idx: body is 5 bytes, expected 6 (the product of the dimensions [2, 3])"
        );
        assert_eq!(
            parse_err(&encode(&[2, 3], &[0; 7])),
            "t.idx: body is 7 bytes, expected 6 (the product of the dimensions [2, 3])"
        );
        // The same through a gzip stream.
        for (data, got) in [(&[0u8; 5][..], 5), (&[0u8; 9][..], 9)] {
            let file = TempFile::new("len.gz", &gzip(&encode(&[2, 3], data)));
            let e = read_idx(&file.0).unwrap_err().to_string();
            assert!(
                e.ends_with(&format!(
                    ": body is {got} bytes, expected 6 (the product of the dimensions [2, 3])"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn forged_huge_header_fails_fast_without_allocating() {
        let start = Instant::now();
        // 2^31 items claimed (exactly the limit), 3 bytes present: an exact length check,
        // nothing of the claimed size is allocated.
        let e = parse_err(&encode(&[1 << 31], &[1, 2, 3]));
        assert_eq!(
            e,
            "t.idx: body is 3 bytes, expected 2147483648 (the product of the dimensions \
             [2147483648])"
        );
        // More than the limit is rejected from the header alone.
        let e = parse_err(&encode(&[1 << 16, (1 << 15) + 1], &[1, 2, 3]));
        assert_eq!(
            e,
            "t.idx: dimensions [65536, 32769] describe more than 2147483648 bytes (the limit); \
             the header is corrupt or the file too large"
        );
        // A product that overflows even u64.
        let e = parse_err(&encode(&[u32::MAX; 4], &[]));
        assert!(e.contains("describe more than"), "{e}");
        // Through gzip, too.
        let file = TempFile::new("forged.gz", &gzip(&encode(&[1 << 31], &[1, 2, 3])));
        let e = read_idx(&file.0).unwrap_err().to_string();
        assert!(
            e.ends_with(
                ": body is 3 bytes, expected 2147483648 (the product of the dimensions \
                 [2147483648])"
            ),
            "{e}"
        );
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    }

    #[test]
    fn corrupt_gzip_is_a_format_error() {
        let mut gz = gzip(&encode(&[4], &[1, 2, 3, 4]));
        let n = gz.len();
        // Damage the CRC at the end of the stream.
        gz[n - 8] ^= 0xff;
        let file = TempFile::new("bad-crc.gz", &gz);
        let e = read_idx(&file.0).unwrap_err();
        assert!(matches!(e, DataError::Format { .. }), "{e:?}");
        assert!(
            e.to_string().contains("corrupt or truncated gzip stream"),
            "{e}"
        );

        // Truncated stream.
        let gz = gzip(&encode(&[100], &[7; 100]));
        let file = TempFile::new("truncated.gz", &gz[..gz.len() / 2]);
        let e = read_idx(&file.0).unwrap_err();
        assert!(matches!(e, DataError::Format { .. }), "{e:?}");

        // Gzip magic then garbage.
        let file = TempFile::new(
            "garbage.gz",
            &[0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        );
        let e = read_idx(&file.0).unwrap_err();
        assert!(matches!(e, DataError::Format { .. }), "{e:?}");
    }

    #[test]
    fn loaders_reject_the_other_kind_of_file() {
        let e = load_mnist_images::<f32>(data_file(LABELS))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                ": expected an IDX images file (magic 0x00000803), got magic 0x00000801 \
                 (dimensions [10000])"
            ),
            "{e}"
        );
        let e = load_mnist_labels(data_file(IMAGES))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                ": expected an IDX labels file (magic 0x00000801), got magic 0x00000803 \
                 (dimensions [10000, 28, 28])"
            ),
            "{e}"
        );
        let e = read_idx("/nonexistent/brick/x.idx").unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
    }

    proptest! {
        #[test]
        fn parse_idx_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_idx(&bytes, Path::new("fuzz.idx"));
        }

        #[test]
        fn parse_idx_never_panics_on_idx_like_bytes(
            ndims in 0u8..5,
            dims in prop::collection::vec(prop_oneof![0u32..4, any::<u32>()], 0..5),
            body in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = vec![0, 0, 8, ndims];
            for d in &dims {
                bytes.extend_from_slice(&d.to_be_bytes());
            }
            bytes.extend_from_slice(&body);
            if let Ok(idx) = parse_idx(&bytes, Path::new("fuzz.idx")) {
                prop_assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
            }
        }

        #[test]
        fn encoded_buffers_round_trip(
            dims in prop::collection::vec(0u32..5, 1..4),
            seed in any::<u8>(),
        ) {
            let n: u32 = dims.iter().product();
            let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let idx = parse_idx(&encode(&dims, &data), Path::new("t.idx")).unwrap();
            let expected: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            prop_assert_eq!(idx.dims, expected);
            prop_assert_eq!(idx.data, data);
        }
    }
}

//! Reading and writing numpy `.npz` archives (plain `np.savez` and compressed
//! `np.savez_compressed`), and the one error type for bad input files.
//!
//! Every array is read into a flat row-major `Vec<f64>` (or `Vec<i64>` for index
//! arrays) with its shape. Files are written atomically: to a temporary file beside
//! the target, then renamed, so a crash never leaves half a file.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, DVector};
use npyz::{NpyFile, Order, TypeChar, WriterBuilder};

use crate::{limits, output};

/// A bad input file: which file, which array, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub struct InputError {
    pub file: PathBuf,
    pub array: Option<String>,
    pub what: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(a) = &self.array {
            write!(f, ": array `{a}`")?;
        }
        write!(f, ": {}", self.what)
    }
}

pub type Result<T> = std::result::Result<T, InputError>;

/// An array read from an archive, row-major (C order), any number of dimensions.
#[derive(Debug, Clone)]
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// An opened `.npz` archive.
pub struct NpzReader {
    path: PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
}

impl NpzReader {
    pub fn open(path: &Path) -> Result<Self> {
        let err = |what: String| InputError { file: path.to_owned(), array: None, what };
        let mut file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let mut magic = [0u8; 6];
        let head = file.read(&mut magic).map_err(|e| err(format!("cannot read: {e}")))?;
        if magic[..head] == NPY_MAGIC[..head.min(6)] && head == 6 {
            return Err(err("is a .npy file (one array), but a .npz archive of named arrays is expected here; \
                 write one with np.savez(path, X=X, y=y) (or the arrays this command reads)"
                .into()));
        }
        file.seek(SeekFrom::Start(0)).map_err(|e| err(format!("cannot read: {e}")))?;
        let archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            err(format!("not a .npz archive (a zip of .npy arrays, as np.savez writes; corrupt or truncated?): {e}"))
        })?;
        Ok(Self { path: path.to_owned(), archive })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about `array` in this file.
    pub fn error(&self, array: &str, what: impl Into<String>) -> InputError {
        InputError { file: self.path.clone(), array: Some(array.to_owned()), what: what.into() }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.archive.index_for_name(&format!("{name}.npy")).is_some()
    }

    /// The names of the arrays in the archive.
    pub fn names(&self) -> Vec<String> {
        self.archive.file_names().filter_map(|f| f.ok()?.strip_suffix(".npy").map(str::to_owned)).collect()
    }

    /// The bytes of one member, after checking its declared size fits in memory.
    fn member(&mut self, name: &str) -> Result<Vec<u8>> {
        let path = self.path.clone();
        let err = |what: String| InputError { file: path.clone(), array: Some(name.to_owned()), what };
        let entry = match self.archive.by_name(&format!("{name}.npy")) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Err(err("missing".to_owned())),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        let declared = entry.size();
        limits::check_alloc("reading it", u128::from(declared), 1).map_err(&err)?;
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        entry
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("corrupt or truncated: {e}")))?;
        if bytes.len() as u64 != declared {
            return Err(err(format!(
                "corrupt: the archive declares {declared} bytes, the member holds {}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn npy(&mut self, name: &str) -> Result<NpyFile<Cursor<Vec<u8>>>> {
        let bytes = self.member(name)?;
        checked_npy(bytes).map_err(|what| self.error(name, what))
    }

    /// A numeric array converted to f64 (float64/32, int64/32, either byte order),
    /// row-major; any other dtype is refused by name.
    pub fn f64_array(&mut self, name: &str) -> Result<Array<f64>> {
        let npy = self.npy(name)?;
        finite_array(npy).map_err(|what| self.error(name, what))
    }

    /// A text scalar (numpy's str, dtype `<U…` or `>U…`), at most [`MAX_TEXT`] characters.
    pub fn text(&mut self, name: &str) -> Result<String> {
        let npy = self.npy(name)?;
        let ts = plain_type(&npy).filter(|ts| ts.type_char() == TypeChar::UnicodeStr);
        let Some(ts) = ts else { return Err(self.error(name, "is not a text scalar (numpy str)")) };
        let size = npy.shape().iter().product::<u64>();
        if size != 1 || ts.size_field() > MAX_TEXT {
            return Err(self.error(name, format!("is not one short text: expected a str of ≤ {MAX_TEXT} characters")));
        }
        let big = ts.endianness() == npyz::Endianness::Big;
        let cursor = npy.into_inner();
        let bytes = &cursor.get_ref()[cursor.position() as usize..];
        let code = |c: &[u8; 4]| if big { u32::from_be_bytes(*c) } else { u32::from_le_bytes(*c) };
        let text: Option<String> =
            bytes.as_chunks::<4>().0.iter().map(code).take_while(|&c| c != 0).map(char::from_u32).collect();
        text.ok_or_else(|| self.error(name, "holds a code point that is not a character"))
    }

    /// Whether the (small) array `name` is stored in a float type narrower than float64.
    pub fn is_low_precision(&mut self, name: &str) -> Result<bool> {
        let npy = self.npy(name)?;
        Ok(plain_type(&npy).is_some_and(|ts| ts.type_char() == TypeChar::Float && ts.size_field() < 8))
    }

    /// An integer array (int32 or int64), row-major.
    pub fn i64_array(&mut self, name: &str) -> Result<Array<i64>> {
        let npy = self.npy(name)?;
        let (shape, order) = shape_and_order(&npy);
        let ts = plain_type(&npy).ok_or_else(|| self.error(name, "is not a plain integer array"))?;
        let data = match (ts.type_char(), ts.size_field()) {
            (TypeChar::Int, 8) => npy.into_vec::<i64>(),
            (TypeChar::Int, 4) => npy.into_vec::<i32>().map(|v| v.into_iter().map(i64::from).collect()),
            _ => return Err(self.error(name, format!("has dtype {ts}, expected int64 indices"))),
        }
        .map_err(|e| self.error(name, format!("corrupt or truncated data: {}", limits::clip(&e.to_string(), 200))))?;
        Ok(to_c_order(Array { shape, data }, order))
    }

    /// A 1-d float array of length `len` (any length when `None`).
    pub fn vector(&mut self, name: &str, len: Option<usize>) -> Result<DVector<f64>> {
        let a = self.f64_array(name)?;
        if a.shape.len() != 1 || len.is_some_and(|l| l != a.data.len()) {
            let want = len.map_or("a vector".to_owned(), |l| format!("shape ({l},)"));
            return Err(self.error(name, format!("has shape {}, expected {want}", fmt_shape(&a.shape))));
        }
        Ok(DVector::from_vec(a.data))
    }

    /// A 2-d float array; `cols` fixes the number of columns when given.
    pub fn matrix(&mut self, name: &str, cols: Option<usize>) -> Result<DMatrix<f64>> {
        let a = self.f64_array(name)?;
        if a.shape.len() != 2 || cols.is_some_and(|c| c != a.shape[1]) {
            let want = cols.map_or("a matrix".to_owned(), |c| format!("shape (_, {c})"));
            return Err(self.error(name, format!("has shape {}, expected {want}", fmt_shape(&a.shape))));
        }
        Ok(from_row_major(a.shape[0], a.shape[1], &a.data))
    }

    /// A 0-d or 1-element array read as one number.
    pub fn scalar(&mut self, name: &str) -> Result<f64> {
        let a = self.f64_array(name)?;
        match a.data.as_slice() {
            [x] => Ok(*x),
            _ => Err(self.error(name, format!("has shape {}, expected a scalar", fmt_shape(&a.shape)))),
        }
    }
}

/// The column-major matrix of row-major `data`, transposed in 32 × 32 tiles (both
/// sides stay in cache: 5× faster than element by element at 1,000 × 5,000).
fn from_row_major(rows: usize, cols: usize, data: &[f64]) -> DMatrix<f64> {
    const TILE: usize = 32;
    let mut out = vec![0.0; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let column = &mut out[c * rows..(c + 1) * rows];
                for (r, o) in column.iter_mut().enumerate().take((r0 + TILE).min(rows)).skip(r0) {
                    *o = data[r * cols + c];
                }
            }
        }
    }
    DMatrix::from_vec(rows, cols, out)
}

/// The longest `.npy` header accepted when streaming (numpy writes under 1 kB).
const MAX_HEADER: u64 = 1 << 20;

/// The item type of a streamed matrix: float64 or float32, in the byte order its
/// header names.
#[derive(Debug, Clone, Copy)]
struct Item {
    size: usize,
    big_endian: bool,
}

impl Item {
    /// The item type of a header, or `None` for a dtype the stream does not decode.
    fn of(ts: &npyz::TypeStr) -> Option<Self> {
        let size = match (ts.type_char(), ts.size_field()) {
            (TypeChar::Float, s @ (4 | 8)) => s as usize,
            _ => return None,
        };
        Some(Self { size, big_endian: ts.endianness() == npyz::Endianness::Big })
    }

    /// Appends the values of `bytes` (whole items) to `buf` as f64.
    fn decode(self, bytes: &[u8], buf: &mut Vec<f64>) {
        match (self.size, self.big_endian) {
            (8, false) => buf.extend(bytes.as_chunks::<8>().0.iter().map(|b| f64::from_le_bytes(*b))),
            (8, true) => buf.extend(bytes.as_chunks::<8>().0.iter().map(|b| f64::from_be_bytes(*b))),
            (_, false) => buf.extend(bytes.as_chunks::<4>().0.iter().map(|b| f64::from(f32::from_le_bytes(*b)))),
            (_, true) => buf.extend(bytes.as_chunks::<4>().0.iter().map(|b| f64::from(f32::from_be_bytes(*b)))),
        }
    }
}

/// A C-order float matrix of an archive read a block of rows at a time (plain members
/// straight from the file, compressed ones through a streaming inflate): memory is one
/// block, whatever the matrix's size.
pub struct RowStream<'a> {
    reader: std::io::BufReader<zip::read::ZipFile<'a, BufReader<File>>>,
    pub rows: usize,
    pub cols: usize,
    item: Item,
    read: usize,
    /// Whether the end of the member (and its CRC-32) has been checked.
    ended: bool,
    path: PathBuf,
    name: String,
    bytes: Vec<u8>,
}

impl RowStream<'_> {
    /// Whether the matrix is stored as float32.
    pub fn is_float32(&self) -> bool {
        self.item.size == 4
    }
}

impl NpzReader {
    /// Opens the 2-d float array `name` for reading by rows, after checking its header:
    /// C order, float64 or float32, and a declared size that the member's bytes hold.
    pub fn rows(&mut self, name: &str) -> Result<RowStream<'_>> {
        let path = self.path.clone();
        let err = |what: String| InputError { file: path.clone(), array: Some(name.to_owned()), what };
        let mut entry = match self.archive.by_name(&format!("{name}.npy")) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Err(err("missing".to_owned())),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        let declared = entry.size();
        let mut head = vec![0u8; 12];
        entry.read_exact(&mut head).map_err(|e| err(format!("corrupt or truncated: {e}")))?;
        let data_start = npy_header_len(&head)
            .filter(|&h| h >= head.len() && h as u64 <= declared.min(MAX_HEADER))
            .ok_or_else(|| err("not a .npy image (bad magic or header length)".into()))?;
        let mut rest = vec![0u8; data_start - head.len()];
        entry.read_exact(&mut rest).map_err(|e| err(format!("corrupt or truncated header: {e}")))?;
        head.extend(rest);
        let npy = NpyFile::new(Cursor::new(head))
            .map_err(|e| err(format!("bad .npy header: {}", limits::clip(&e.to_string(), 200))))?;
        let (shape, order) = shape_and_order(&npy);
        let [rows, cols] = shape[..] else {
            return Err(err(format!("has shape {}, expected a matrix (K, d)", fmt_shape(&shape))));
        };
        let Some(item) = plain_type(&npy).as_ref().and_then(Item::of) else {
            return Err(err(format!(
                "has dtype {}; accepted: float64, float32 (either byte order)",
                npy.dtype().descr()
            )));
        };
        if order == Order::Fortran {
            return Err(err(
                "is in Fortran order, which cannot be read by rows; save it with np.ascontiguousarray".into()
            ));
        }
        let size = item.size as u128;
        let need = (rows as u128).checked_mul(cols as u128).and_then(|c| c.checked_mul(size));
        if need.and_then(|n| n.checked_add(data_start as u128)) != Some(u128::from(declared)) {
            return Err(err(format!(
                "corrupt or truncated: shape ({rows}, {cols}) needs {} bytes of data, the member holds {}",
                need.map_or("more than 2^128".into(), |n| n.to_string()),
                u128::from(declared).saturating_sub(data_start as u128)
            )));
        }
        Ok(RowStream {
            reader: std::io::BufReader::with_capacity(1 << 16, entry),
            rows,
            cols,
            item,
            read: 0,
            ended: false,
            path: self.path.clone(),
            name: name.to_owned(),
            bytes: Vec::new(),
        })
    }
}

impl RowStream<'_> {
    /// Reads up to `max_rows` more rows into `buf` (row-major, converted to f64);
    /// returns how many (0 at the end). Non-finite entries are errors, and so is a
    /// member whose CRC-32 does not match (checked when its last row is read).
    pub fn next_rows(&mut self, buf: &mut Vec<f64>, max_rows: usize) -> Result<usize> {
        let take = max_rows.min(self.rows - self.read);
        self.bytes.resize(take * self.cols * self.item.size, 0);
        if let Err(e) = self.reader.read_exact(&mut self.bytes) {
            return Err(self.error(format!("corrupt or truncated data at row {}: {e}", self.read)));
        }
        buf.clear();
        self.item.decode(&self.bytes, buf);
        if let Some(k) = buf.iter().position(|v| !v.is_finite()) {
            let (r, c) = (self.read + k / self.cols, k % self.cols);
            return Err(self.error(format!("entry [{r}, {c}] is {} (not finite)", buf[k])));
        }
        self.read += take;
        if self.read == self.rows && !self.ended {
            self.ended = true;
            self.check_end().map_err(|what| self.error(what))?;
        }
        Ok(take)
    }

    fn error(&self, what: String) -> InputError {
        InputError { file: self.path.clone(), array: Some(self.name.clone()), what }
    }

    /// At the member's end: no byte left, and the CRC-32 that zip checks when a read
    /// reaches the end (as numpy's reader does) matches.
    fn check_end(&mut self) -> std::result::Result<(), String> {
        match self.reader.read(&mut [0u8; 1]) {
            Ok(0) => Ok(()),
            Ok(_) => Err("corrupt: the member holds more bytes than its header declares".into()),
            Err(e) => Err(format!("corrupt: {e} (the member's CRC-32 does not match its data)")),
        }
    }
}

/// A float vector from a `.npy` file, or from array `name` of a `.npz` archive.
/// `len` fixes the length when given.
pub fn read_vector(path: &Path, name: &str, len: Option<usize>) -> Result<DVector<f64>> {
    if path.extension().is_some_and(|e| e == "npz") {
        return NpzReader::open(path)?.vector(name, len);
    }
    let err = |what: String| InputError { file: path.to_owned(), array: None, what };
    let size = std::fs::metadata(path).map_err(|e| err(format!("cannot open: {e}")))?.len();
    limits::check_alloc("reading it", u128::from(size), 1).map_err(err)?;
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let npy = checked_npy(bytes).map_err(|what| err(format!("not a readable .npy file: {what}")))?;
    let shape = shape_and_order(&npy).0;
    if shape.len() != 1 || len.is_some_and(|l| shape != [l]) {
        let want = len.map_or("a vector".to_owned(), |l| format!("({l},)"));
        return Err(err(format!("has shape {}, expected {want}", fmt_shape(&shape))));
    }
    Ok(DVector::from_vec(finite_array(npy).map_err(err)?.data))
}

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The longest text scalar [`NpzReader::text`] reads.
pub const MAX_TEXT: u64 = 64;

/// Parses a `.npy` image and checks, before anything is allocated from it, that the
/// element count of its declared shape (checked arithmetic) times the item size equals
/// the bytes that follow the header.
fn checked_npy(bytes: Vec<u8>) -> std::result::Result<NpyFile<Cursor<Vec<u8>>>, String> {
    let data_start = npy_data_offset(&bytes).ok_or("not a .npy image (bad magic or header length)")?;
    let held = bytes.len() - data_start;
    let npy = NpyFile::new(Cursor::new(bytes))
        .map_err(|e| format!("bad .npy header: {}", limits::clip(&e.to_string(), 200)))?;
    let item = match npy.dtype() {
        npyz::DType::Plain(ts) if ts.type_char() == TypeChar::UnicodeStr => 4 * ts.size_field() as u128,
        npyz::DType::Plain(ts) => ts.size_field() as u128,
        other => return Err(format!("is not a plain numeric array (dtype {})", limits::clip(&other.descr(), 60))),
    };
    let shape = npy.shape().to_vec();
    let count = shape.iter().try_fold(1u128, |acc, &s| acc.checked_mul(u128::from(s)));
    let shown = limits::clip(&format!("{shape:?}"), 80);
    match count.and_then(|c| c.checked_mul(item)) {
        Some(need) if need == held as u128 => Ok(npy),
        Some(need) => {
            Err(format!("corrupt or truncated: shape {shown} needs {need} bytes of data, the file holds {held}"))
        }
        None => Err(format!("corrupt: shape {shown} has more elements than any file can hold")),
    }
}

/// Where the data of a `.npy` image starts (after magic, version and header).
fn npy_data_offset(bytes: &[u8]) -> Option<usize> {
    let start = npy_header_len(bytes)?;
    (start <= bytes.len()).then_some(start)
}

/// The length of magic, version and header, from the image's first 10 or 12 bytes.
fn npy_header_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return None;
    }
    match bytes[6] {
        1 => Some(10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        2 | 3 => Some(12 + u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize),
        _ => None,
    }
}

/// A numeric `.npy` image as a row-major f64 array ([`decode_f64`]), every entry finite
/// (else an error naming the first that is not).
fn finite_array(npy: NpyFile<Cursor<Vec<u8>>>) -> std::result::Result<Array<f64>, String> {
    let (shape, order) = shape_and_order(&npy);
    let arr = to_c_order(Array { shape, data: decode_f64(npy)? }, order);
    match arr.data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(format!("entry {} is {} (not finite)", flat_index(&arr.shape, i), arr.data[i])),
        None => Ok(arr),
    }
}

/// The data of a numeric `.npy` image as f64 in file order: float64 and float32,
/// int64 and int32, each in the byte order its header names; any other dtype (float16,
/// complex, unsigned, bool, strings, records) is refused by name.
fn decode_f64(npy: NpyFile<Cursor<Vec<u8>>>) -> std::result::Result<Vec<f64>, String> {
    let ts = plain_type(&npy).ok_or("is not a plain numeric array")?;
    let data = match (ts.type_char(), ts.size_field()) {
        // Little-endian float64, what numpy writes on every common machine: straight
        // from the bytes (6× faster than npyz's element iterator).
        (TypeChar::Float, 8) if ts.endianness() == npyz::Endianness::Little => {
            let cursor = npy.into_inner();
            let start = cursor.position() as usize;
            let bytes = &cursor.get_ref()[start..];
            Ok(bytes.as_chunks::<8>().0.iter().map(|b| f64::from_le_bytes(*b)).collect())
        }
        (TypeChar::Float, 8) => npy.into_vec::<f64>(),
        (TypeChar::Float, 4) => npy.into_vec::<f32>().map(widen),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map(|v| v.into_iter().map(|x| x as f64).collect()),
        (TypeChar::Int, 4) => npy.into_vec::<i32>().map(widen),
        _ => return Err(format!("has dtype {ts}; accepted: float64, float32, int64, int32 (either byte order)")),
    };
    data.map_err(|e| format!("corrupt or truncated data: {}", limits::clip(&e.to_string(), 200)))
}

fn widen<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
    v.into_iter().map(Into::into).collect()
}

fn plain_type<R: Read>(npy: &NpyFile<R>) -> Option<npyz::TypeStr> {
    match npy.dtype() {
        npyz::DType::Plain(ts) => Some(ts),
        _ => None,
    }
}

fn shape_and_order<R: Read>(npy: &NpyFile<R>) -> (Vec<usize>, Order) {
    (npy.shape().iter().map(|&s| s as usize).collect(), npy.order())
}

/// Reorders a Fortran-order matrix's data to C order (1-d arrays need nothing).
fn to_c_order<T: Copy>(a: Array<T>, order: Order) -> Array<T> {
    match (order, a.shape.as_slice()) {
        (Order::Fortran, &[rows, cols]) => {
            let data = (0..rows * cols).map(|k| a.data[(k % cols) * rows + k / cols]).collect();
            Array { shape: a.shape, data }
        }
        _ => a,
    }
}

fn unravel(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, s) in shape.iter().enumerate().rev() {
        idx[k] = flat % s;
        flat /= s;
    }
    idx
}

fn flat_index(shape: &[usize], flat: usize) -> String {
    let idx: Vec<String> = unravel(shape, flat).iter().map(usize::to_string).collect();
    format!("[{}]", idx.join(", "))
}

pub fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [a] => format!("({a},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Collects arrays, then writes them as one plain `.npz` archive, atomically.
#[derive(Default)]
pub struct NpzWriter {
    entries: Vec<(String, Vec<u8>)>,
}

impl NpzWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a float64 array of the given shape (row-major data).
    pub fn f64(&mut self, name: &str, shape: &[usize], data: &[f64]) -> &mut Self {
        self.add(name, shape, data)
    }

    /// Adds a text scalar (numpy str, dtype `<U…`): `np.load(f)[name]` gives it back.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        let chars: Vec<char> = text.chars().collect();
        let dict = format!("{{'descr': '<U{}', 'fortran_order': False, 'shape': (), }}", chars.len().max(1));
        // Header padded with spaces so the data starts on a 64-byte boundary (npy 1.0).
        let unpadded = 10 + dict.len() + 1;
        let header = format!("{dict}{}\n", " ".repeat(unpadded.next_multiple_of(64) - unpadded));
        let mut bytes = NPY_MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for c in chars.iter().copied().chain((chars.is_empty()).then_some('\0')) {
            bytes.extend_from_slice(&(c as u32).to_le_bytes());
        }
        self.entries.push((name.to_owned(), bytes));
        self
    }

    /// Adds an int64 array of the given shape (row-major data).
    pub fn i64(&mut self, name: &str, shape: &[usize], data: &[i64]) -> &mut Self {
        self.add(name, shape, data)
    }

    pub fn vector(&mut self, name: &str, v: &DVector<f64>) -> &mut Self {
        self.f64(name, &[v.len()], v.as_slice())
    }

    pub fn matrix(&mut self, name: &str, m: &DMatrix<f64>) -> &mut Self {
        let row_major: Vec<f64> = m.transpose().as_slice().to_vec();
        self.f64(name, &[m.nrows(), m.ncols()], &row_major)
    }

    fn add<T: npyz::AutoSerialize + Copy>(&mut self, name: &str, shape: &[usize], data: &[T]) -> &mut Self {
        let mut bytes = Vec::new();
        let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
        // Writing into a Vec cannot fail.
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut bytes)
            .begin_nd()
            .expect("in-memory write");
        w.extend(data.iter().copied()).expect("in-memory write");
        w.finish().expect("in-memory write");
        self.entries.push((name.to_owned(), bytes));
        self
    }

    /// Writes the archive to `path` atomically through [`output::write_atomic`] (never over
    /// a special file or one of `inputs`).
    pub fn write(&self, path: &Path, inputs: &[&Path]) -> Result<()> {
        output::write_atomic(path, inputs, |file| {
            let mut zip = zip::ZipWriter::new(file);
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            for (name, bytes) in &self.entries {
                zip.start_file(format!("{name}.npy"), opts).map_err(std::io::Error::other)?;
                zip.write_all(bytes)?;
            }
            zip.finish().map_err(std::io::Error::other)?;
            Ok(())
        })
        .map_err(|e| InputError { file: e.path, array: None, what: e.what })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiled_transpose_matches_the_plain_one() {
        for (rows, cols) in [(1, 1), (20, 30), (33, 65), (64, 31)] {
            let data: Vec<f64> = (0..rows * cols).map(|k| k as f64 * 0.5 - 7.0).collect();
            let plain = nalgebra::DMatrix::from_row_slice(rows, cols, &data);
            assert_eq!(super::from_row_major(rows, cols, &data), plain, "{rows}×{cols}");
        }
    }
}

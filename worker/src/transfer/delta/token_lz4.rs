//! lz4 codec for the `lz4` token format: every DEFLATED_DATA frame is one
//! independent LZ4 block (no shared state), holding at most 16383 input
//! bytes; upstream halves the input when the block would not fit a frame.

use std::io;

use crate::transfer::delta::error::DeltaError;
use crate::transfer::delta::token_runs::{frame_one, MAX_DATA_COUNT};

/// Upstream's receive buffer: MAX(LZ4_compressBound(CHUNK_SIZE), MAX_DATA_COUNT+2).
pub(crate) const LZ4_RX_MAX: usize = 32768 + 32768 / 255 + 16;

/// Compress `data` into framed LZ4 blocks appended to `out`.
pub(crate) fn lz4_compress_frames(mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut scratch = vec![0u8; lz4_flex::block::get_maximum_output_size(MAX_DATA_COUNT)];
    while !data.is_empty() {
        let mut take = data.len().min(MAX_DATA_COUNT);
        loop {
            let n = lz4_flex::block::compress_into(&data[..take], &mut scratch).map_err(|e| io::Error::other(format!("lz4: {e}")))?;
            if n <= MAX_DATA_COUNT {
                frame_one(&scratch[..n], out);
                break;
            }
            take /= 2;
        }
        data = &data[take..];
    }
    Ok(())
}

/// Decompress one frame (one LZ4 block).
pub(crate) fn lz4_decompress_frame(frame: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut buf = vec![0u8; LZ4_RX_MAX];
    let n = lz4_flex::block::decompress_into(frame, &mut buf).map_err(|e| DeltaError::Compression {
        codec: "lz4",
        detail: e.to_string(),
    })?;
    buf.truncate(n);
    Ok(buf)
}

//! Which session-table row each live worker process counts in. Rows are
//! handed out on spawn and zeroed when the process is reaped, so a killed
//! worker's sessions never stay counted.

use oxrsyncd_shared::session_table::TABLE_ROWS;

/// Free rows of the session table.
pub struct RowAllocator {
    free: Vec<usize>,
}

impl Default for RowAllocator {
    fn default() -> Self {
        RowAllocator {
            free: (0..TABLE_ROWS).rev().collect(),
        }
    }
}

impl RowAllocator {
    pub fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }

    pub fn give_back(&mut self, row: usize) {
        self.free.push(row);
    }
}

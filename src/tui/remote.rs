//! A terminal at the far end of a byte stream (an SSH channel): crossterm's escape sequences
//! written to any `Write`, with the size the far end reported instead of this process's tty
//! (which `serve` does not have) and the cursor where we last put it (asking the terminal where
//! it is would read this process's stdin).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};

/// The far terminal's size, shared with whoever hears of changes (the SSH window-change
/// request): set it before the dashboard gets the matching resize event.
#[derive(Clone, Debug)]
pub struct SharedSize(Arc<AtomicU32>);

impl SharedSize {
    pub fn new(width: u16, height: u16) -> SharedSize {
        let s = SharedSize(Arc::new(AtomicU32::new(0)));
        s.set(width, height);
        s
    }

    pub fn set(&self, width: u16, height: u16) {
        self.0
            .store((u32::from(width) << 16) | u32::from(height), Ordering::SeqCst);
    }

    pub fn get(&self) -> Size {
        let v = self.0.load(Ordering::SeqCst);
        // The two halves of a u32 are u16 by construction.
        #[allow(clippy::cast_possible_truncation)]
        Size::new((v >> 16) as u16, (v & 0xffff) as u16)
    }
}

pub struct RemoteBackend<W: Write> {
    inner: CrosstermBackend<W>,
    size: SharedSize,
    cursor: Position,
}

impl<W: Write> RemoteBackend<W> {
    pub fn new(out: W, size: SharedSize) -> RemoteBackend<W> {
        RemoteBackend {
            inner: CrosstermBackend::new(out),
            size,
            cursor: Position::ORIGIN,
        }
    }

    /// The stream, for the escape sequences around a session (alternate screen, cursor).
    pub fn writer(&mut self) -> &mut impl Write {
        &mut self.inner
    }
}

impl<W: Write> Backend for RemoteBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(self.cursor)
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.cursor = position.into();
        self.inner.set_cursor_position(self.cursor)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        Ok(self.size.get())
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        Ok(WindowSize {
            columns_rows: self.size.get(),
            pixels: Size::default(),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

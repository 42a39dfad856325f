//! ram_fb: a display without hardware, so the GUI can be tested before (and
//! apart from) any PCI driver.
//!
//! It serves one Framebuffer session at a time over a RAM dataspace paid
//! from the session's donation. Its config names rectangles to watch; after
//! every refresh it recomputes their checksums
//! (`arbor_sessions::framebuffer::checksum`, the function host tests use to
//! predict them) and logs each one that changed:
//! `watch NAME (x, y, w x h): sum 0x...`. A scenario expects the final
//! value of each watch, computed on the host from the same rendering code.
//!
//! It never trusts its client: rectangles are clipped to the mode, and a
//! second session is refused while one is open.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use arbor_sessions::client::{self};
use arbor_sessions::framebuffer::{
    self, FramebufferReply, FramebufferRequest, Mode, PixelFormat, Screen, ServerConfig, Watches,
};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, env, log};

arbor::entry!(run);

fn run(_argument: u64) {
    let config = match env::config::<ServerConfig>() {
        Ok(config) => config,
        Err(error) => {
            log!("bad config: {error}");
            client::exit(1);
            return;
        }
    };
    let mode = match Mode::new(config.width, config.height, PixelFormat::Xrgb8888) {
        Ok(mode) => mode,
        Err(error) => {
            log!("bad mode {}x{}: {error}", config.width, config.height);
            client::exit(1);
            return;
        }
    };
    let server = match Server::new() {
        Ok(server) => server,
        Err(error) => {
            log!("no server endpoint: {error}");
            client::exit(1);
            return;
        }
    };
    log!(
        "{}x{} XRGB8888 in RAM, {} watched rectangles",
        mode.width,
        mode.height,
        config.watch.len()
    );
    let watches = Watches::new(config.watch);
    let error = server.serve(
        &[framebuffer::SERVICE],
        RamFramebuffer {
            mode,
            open: false,
            watches,
        },
    );
    log!("stopped: {error}");
    client::exit(1);
}

/// The driver: one mode, at most one session, the watched rectangles and
/// their last logged sums.
struct RamFramebuffer {
    mode: Mode,
    open: bool,
    watches: Watches,
}

impl Service for RamFramebuffer {
    type Session = Screen;
    type Reply = FramebufferReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Screen, SessionError> {
        if self.open {
            return Err(SessionError::AlreadyClaimed);
        }
        let screen = Screen::create(&self.mode, &quota)?;
        self.open = true;
        Ok(screen)
    }

    fn opened(&mut self, session: &Entry<Screen>) {
        log!("session for \"{}\"", session.label);
    }

    fn close(&mut self, session: Entry<Screen>) {
        let screen = session.state;
        let refreshes = screen.refreshes;
        screen.release();
        self.open = false;
        log!("session closed after {refreshes} refreshes");
    }

    fn handle(&mut self, session: &mut Entry<Screen>, call: &mut Call<'_>) -> FramebufferReply {
        let request = match framebuffer::decode_request(call.incoming.bytes()) {
            Ok(request) => request,
            Err(error) => return FramebufferReply::Error(error),
        };
        let screen = &mut session.state;
        match request {
            FramebufferRequest::Mode => FramebufferReply::Mode(self.mode),
            FramebufferRequest::Dataspace => {
                call.reply_cap(screen.dataspace);
                FramebufferReply::Dataspace {
                    size: self.mode.buffer_bytes(),
                }
            }
            FramebufferRequest::Refresh { rect } => {
                screen.refreshes += 1;
                if !rect.clipped_to(&self.mode).is_empty() {
                    self.watches.check(screen.pixels, &self.mode);
                }
                FramebufferReply::Done
            }
            FramebufferRequest::Checksum { rect } => {
                framebuffer::answer_checksum(screen.pixels, &self.mode, &rect)
            }
        }
    }

    fn error(error: SessionError) -> FramebufferReply {
        FramebufferReply::Error(error)
    }
}

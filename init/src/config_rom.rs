//! The one service init serves itself: each child's `config` ROM, its
//! config text in a dataspace paid from the session's donation. Written
//! against the server framework's root mode ([`Root`]): the table, badges
//! and call dispatch are the framework's, this says what a session holds.

use alloc::string::String;
use arbor::abi::CapSlot;
use arbor::guard::SlotGuard;
use arbor_sessions::SessionError;
use arbor_sessions::server::{Call, Root, Service};
use arbor_sessions::services::{RomReply, RomRequest};
use arbor_sessions::table::{Entry, Quota};

/// A config ROM session: the dataspace with the text, and its length.
pub(crate) struct ConfigRom {
    dataspace: CapSlot,
    size: u64,
}

/// init's config-ROM service.
#[derive(Default)]
pub(crate) struct ConfigRoms {
    /// The text of the session being created (set by init just before).
    pub(crate) text: String,
}

/// The RAM a config ROM of `len` bytes costs: its pages and one for the table.
pub(crate) fn ram_needed(len: usize) -> u64 {
    (len as u64).max(1).div_ceil(4096) * 4096 + 4096
}

impl Service for ConfigRoms {
    type Session = ConfigRom;
    type Reply = RomReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<ConfigRom, SessionError> {
        let text = core::mem::take(&mut self.text);
        quota.require(Quota {
            ram: ram_needed(text.len()),
            caps: 0,
        })?;
        let dataspace = arbor::vspace::dataspace_with(text.as_bytes())?;
        Ok(ConfigRom {
            dataspace,
            size: text.len() as u64,
        })
    }

    fn handle(&mut self, session: &mut Entry<ConfigRom>, call: &mut Call<'_>) -> RomReply {
        match call.request::<RomRequest>() {
            Ok(RomRequest::Dataspace) => {
                call.reply_cap(session.state.dataspace);
                RomReply::Dataspace {
                    size: session.state.size,
                }
            }
            Err(error) => RomReply::Error(error),
        }
    }

    fn error(error: SessionError) -> RomReply {
        RomReply::Error(error)
    }

    fn close(&mut self, session: Entry<ConfigRom>) {
        drop(SlotGuard::adopt(session.state.dataspace).destroying());
    }
}

/// init's config-ROM server on `endpoint`, badges beside the children's.
pub(crate) fn server(endpoint: CapSlot) -> Root<ConfigRoms> {
    Root::with_first_badge(endpoint, ConfigRoms::default(), super::badge::local(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_rom_costs_its_pages_and_one_more() {
        assert_eq!(ram_needed(0), 8192);
        assert_eq!(ram_needed(4096), 8192);
        assert_eq!(ram_needed(4097), 12288);
    }

    #[test]
    fn a_short_donation_is_refused_before_anything_is_made() {
        let mut roms = ConfigRoms {
            text: String::from("greeting: \"hi\""),
        };
        assert_eq!(
            roms.create("Rom", "config", &[], Quota { ram: 4096, caps: 2 })
                .err(),
            Some(SessionError::InsufficientQuota { needed: 4096 })
        );
    }
}

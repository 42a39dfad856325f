//! Encoding round trips and garbage.

extern crate std;

use super::parent::{Delivery, ParentReply, ParentRequest, SessionCall, Work};
use super::services::{IoPortArgs, LogRequest, TimerRequest};
use super::*;

#[test]
fn requests_round_trip() {
    let mut buffer = [0u8; 256];
    let args_len = encode(
        &IoPortArgs {
            first: 0x40,
            count: 4,
        },
        &mut buffer[128..],
    )
    .unwrap();
    let args = std::vec::Vec::from(&buffer[128..128 + args_len]);
    let request = ParentRequest::Session(SessionCall {
        service: "IoPort",
        label: "timer",
        args: &args,
        ram: 8192,
        caps: 4,
    });
    let len = encode(&request, &mut buffer).unwrap();
    assert_eq!(
        decode::<ParentRequest<'_>>(&buffer[..len]).unwrap(),
        request
    );
    let decoded: IoPortArgs = decode(&args).unwrap();
    assert_eq!(
        decoded,
        IoPortArgs {
            first: 0x40,
            count: 4
        }
    );
}

#[test]
fn replies_round_trip() {
    let mut buffer = [0u8; 128];
    for reply in [
        ParentReply::Session { session: 7 },
        ParentReply::Done,
        ParentReply::Error(SessionError::InsufficientQuota { needed: 4096 }),
        ParentReply::Pending { session: 9 },
        ParentReply::NoWork,
        ParentReply::Work(Work::Create {
            id: 3,
            call: SessionCall {
                service: "Timer",
                label: "init -> hello",
                args: &[1, 2],
                ram: 4096,
                caps: 2,
            },
        }),
        ParentReply::Work(Work::Close { id: 4, badge: 17 }),
    ] {
        let len = encode(&reply, &mut buffer).unwrap();
        assert_eq!(decode::<ParentReply<'_>>(&buffer[..len]).unwrap(), reply);
    }
}

#[test]
fn too_small_buffer_is_an_error_not_a_panic() {
    let mut buffer = [0u8; 4];
    let request = LogRequest::Write {
        text: "a line longer than four bytes",
    };
    assert_eq!(encode(&request, &mut buffer), Err(SessionError::BadRequest));
}

#[test]
fn garbage_is_refused() {
    let mut seed = 0x1234_5678_9ABC_DEF0_u64;
    let mut bytes = [0u8; 64];
    for _ in 0..20_000 {
        for byte in bytes.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = seed as u8;
        }
        let len = (seed >> 32) as usize % bytes.len();
        let _ = decode::<ParentRequest<'_>>(&bytes[..len]);
        let _ = decode::<ParentReply<'_>>(&bytes[..len]);
        let _ = decode::<Delivery>(&bytes[..len]);
        let _ = decode::<TimerRequest>(&bytes[..len]);
        let _ = decode::<LogRequest<'_>>(&bytes[..len]);
    }
    assert_eq!(
        decode::<TimerRequest>(&[0xFF]),
        Err(SessionError::BadRequest)
    );
}

#[test]
fn kernel_errors_travel_by_code_and_forged_codes_do_not_decode() {
    let mut buffer = [0u8; 32];
    for error in arbor_abi::Error::ALL {
        let reply = ParentReply::Error(SessionError::from(error));
        let len = encode(&reply, &mut buffer).unwrap();
        assert_eq!(decode::<ParentReply<'_>>(&buffer[..len]).unwrap(), reply);
    }
    // The same reply with a code the ABI does not have.
    let len = encode(
        &ParentReply::Error(SessionError::Kernel(arbor_abi::Error::InvalidState)),
        &mut buffer,
    )
    .unwrap();
    let code = arbor_abi::Error::InvalidState as u8;
    let at = buffer[..len].iter().rposition(|b| *b == code).unwrap();
    for forged in [0u8, 17, 99, 127] {
        buffer[at] = forged;
        assert_eq!(
            decode::<ParentReply<'_>>(&buffer[..len]),
            Err(SessionError::BadRequest),
            "code {forged}"
        );
    }
}

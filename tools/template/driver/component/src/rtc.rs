//! The MC146818-compatible real-time clock's registers and how to read
//! them (register map as in the Motorola MC146818A datasheet, which the
//! PC's CMOS clock and QEMU's model follow).

/// The seconds register (0–59, in BCD or binary, see [`STATUS_B_BINARY`]).
pub const SECONDS: u8 = 0x00;
/// Status register B: interrupt enables and data format.
pub const STATUS_B: u8 = 0x0B;
/// Status register C: which interrupts fired. Reading it clears them and
/// lets the clock raise its interrupt line again.
pub const STATUS_C: u8 = 0x0C;

/// Register B: interrupt once a second, after each update of the time.
pub const STATUS_B_UPDATE_INTERRUPT: u8 = 1 << 4;
/// Register B: time registers hold binary numbers instead of BCD.
pub const STATUS_B_BINARY: u8 = 1 << 2;
/// Register C: the update-ended interrupt fired.
pub const STATUS_C_UPDATE_ENDED: u8 = 1 << 4;

/// A time register's value is not a number the clock could hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadDigits(pub u8);

/// Decodes a time register read while register B was `status_b`: binary,
/// or two BCD digits (0x59 is 59). The hardware is trusted no more than a
/// client: a digit above 9 is an error, not a wrong number.
pub fn decode(raw: u8, status_b: u8) -> Result<u8, BadDigits> {
    if status_b & STATUS_B_BINARY != 0 {
        return Ok(raw);
    }
    let (tens, ones) = (raw >> 4, raw & 0x0F);
    if tens > 9 || ones > 9 {
        return Err(BadDigits(raw));
    }
    Ok(tens * 10 + ones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_digits_become_numbers() {
        assert_eq!(decode(0x00, 0), Ok(0));
        assert_eq!(decode(0x59, 0), Ok(59));
        assert_eq!(decode(0x07, STATUS_B_UPDATE_INTERRUPT), Ok(7));
    }

    #[test]
    fn binary_mode_is_taken_as_is() {
        assert_eq!(decode(59, STATUS_B_BINARY), Ok(59));
    }

    #[test]
    fn a_digit_above_nine_is_refused() {
        assert_eq!(decode(0x5A, 0), Err(BadDigits(0x5A)));
        assert_eq!(decode(0xA0, 0), Err(BadDigits(0xA0)));
    }
}

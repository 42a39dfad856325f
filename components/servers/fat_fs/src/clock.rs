//! Time for FAT timestamps: seconds since 1970 turned into the calendar,
//! and the CMOS RTC's BCD fields turned into seconds (pure arithmetic; the
//! port reads live in `main.rs`).

/// A calendar date and time (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// Year (1970..).
    pub year: u16,
    /// Month 1..=12.
    pub month: u16,
    /// Day 1..=31.
    pub day: u16,
    /// Hour 0..=23.
    pub hour: u16,
    /// Minute 0..=59.
    pub minute: u16,
    /// Second 0..=59.
    pub second: u16,
}

/// Days since 1970-01-01 of a date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The calendar of `seconds` since 1970-01-01 00:00:00.
pub fn calendar(seconds: u64) -> Calendar {
    let days = (seconds / 86_400) as i64;
    let in_day = seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    Calendar {
        year: year.clamp(0, i64::from(u16::MAX)) as u16,
        month: month as u16,
        day: day as u16,
        hour: (in_day / 3600) as u16,
        minute: (in_day / 60 % 60) as u16,
        second: (in_day % 60) as u16,
    }
}

/// One BCD byte as a number (garbage digits give garbage, never a panic).
pub fn from_bcd(value: u8) -> u8 {
    (value >> 4).wrapping_mul(10).wrapping_add(value & 0x0f)
}

/// Seconds since 1970 for RTC fields (already binary), if they make sense.
pub fn rtc_seconds(
    century_year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
) -> Option<u64> {
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && century_year >= 1980;
    if !valid {
        return None;
    }
    let days = days_from_civil(i64::from(century_year), i64::from(month), i64::from(day));
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    u64::try_from(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(
            calendar(0),
            Calendar {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        // 2025-01-01T00:00:00Z
        let new_year = rtc_seconds(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(new_year, 1_735_689_600);
        assert_eq!(calendar(new_year + 86_399).hour, 23);
        // 2024-02-29T12:34:56Z, a leap day.
        let leap = rtc_seconds(2024, 2, 29, 12, 34, 56).unwrap();
        assert_eq!(
            calendar(leap),
            Calendar {
                year: 2024,
                month: 2,
                day: 29,
                hour: 12,
                minute: 34,
                second: 56
            }
        );
    }

    #[test]
    fn rtc_garbage_is_refused() {
        assert_eq!(from_bcd(0x59), 59);
        assert_eq!(rtc_seconds(2025, 13, 1, 0, 0, 0), None);
        assert_eq!(rtc_seconds(2025, 1, 0, 0, 0, 0), None);
        assert_eq!(rtc_seconds(2025, 1, 1, 24, 0, 0), None);
        assert_eq!(rtc_seconds(1970, 1, 1, 0, 0, 0), None);
        let _ = from_bcd(0xff);
    }
}

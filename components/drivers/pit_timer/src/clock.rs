//! Time as the PIT measures it. Channel 0 runs as a rate generator whose
//! input clock is 1.193182 MHz (the i8254 datasheet's "CLK" on PC-compatible
//! boards); a divisor of [`DIVISOR`] gives an interrupt about every
//! millisecond, and the clock converts counted ticks back to milliseconds
//! with the exact ratio so that it does not drift by the rounding.

/// The PIT's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// Interrupts per second the driver asks for.
pub const TICK_HZ: u64 = 1000;
/// Channel 0's reload value: the input clock divided by [`TICK_HZ`], rounded.
pub const DIVISOR: u16 = ((PIT_HZ + TICK_HZ / 2) / TICK_HZ) as u16;

/// Milliseconds since the driver started, counted in PIT ticks.
///
/// A tick that arrives while the previous interrupt is still unacknowledged
/// is lost (the line stays masked until the driver acknowledges), so the
/// clock can only run slow, never fast, when the driver is starved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    ticks: u64,
}

impl Clock {
    /// A clock at zero.
    pub const fn new() -> Self {
        Clock { ticks: 0 }
    }

    /// Counts one interrupt.
    pub fn tick(&mut self) {
        self.ticks = self.ticks.saturating_add(1);
    }

    /// Ticks counted so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Milliseconds the counted ticks amount to.
    pub fn now_ms(&self) -> u64 {
        let ms = u128::from(self.ticks) * u128::from(DIVISOR) * 1000 / u128::from(PIT_HZ);
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisor_gives_one_kilohertz() {
        assert_eq!(DIVISOR, 1193);
        let hz = PIT_HZ as f64 / f64::from(DIVISOR);
        assert!((hz - 1000.0).abs() < 1.0, "{hz}");
    }

    #[test]
    fn milliseconds_follow_the_exact_ratio() {
        let mut clock = Clock::new();
        assert_eq!(clock.now_ms(), 0);
        for _ in 0..1000 {
            clock.tick();
        }
        // 1000 ticks of 1193 / 1193182 s are 999.85 ms.
        assert_eq!(clock.now_ms(), 999);
        for _ in 0..1_000_000 {
            clock.tick();
        }
        // 1001000 ticks: 1000847.3 ms.
        assert_eq!(clock.now_ms(), 1_000_847);
    }
}

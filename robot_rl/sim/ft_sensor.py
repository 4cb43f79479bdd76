"""A wrist force-torque sensor as a real one behaves: bias, white noise, a low-pass filter, tare.

The twin reads MuJoCo's ideal force/torque at the flange at every physics step; this class
turns those samples into what a real sensor would have streamed, and a control period's worth
into the statistic the observation carries (mean and max-abs over the period, the spec in
../../shared/ARCHITECTURE.md), so a policy sees impacts shorter than a control period.
measure() keeps the filter's state between calls: consecutive chunks of any length give, bit for
bit, what one call on all of them gives (the noise is drawn in sample order), so a real-time
driver can stream the samples a few at a time.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from robot_rl.sim.config import FTSensorConfig


class WristFTSensor:
    def __init__(self, cfg: FTSensorConfig, physics_dt: float):
        self.cfg = cfg
        self.noise_std = np.array([cfg.force_noise_std] * 3 + [cfg.torque_noise_std] * 3)
        self.bias_std = np.array([cfg.force_bias_std] * 3 + [cfg.torque_bias_std] * 3)
        # First-order low-pass y[n] = y[n-1] + alpha (x[n] - y[n-1]), cut-off lowpass_hz.
        self.alpha = 1.0 - np.exp(-2 * np.pi * cfg.lowpass_hz * physics_dt) if cfg.lowpass_hz > 0 else 1.0
        self.bias = np.zeros(6)
        self.offset = np.zeros(6)  # subtracted by tare(), as the real sensor's bias command does
        self.filter_state = np.zeros(6)

    def reset(self, rng: np.random.Generator, randomize_bias: bool, first_raw_sample: np.ndarray) -> None:
        self.bias = rng.normal(0.0, self.bias_std) if randomize_bias else np.zeros(6)
        self.offset = np.zeros(6)
        self.filter_state = first_raw_sample + self.bias

    def measure(self, raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Raw samples (n, 6) [N, Nm], the ones after the previous call's -> the sensor's output (n, 6)."""
        if len(raw) == 0:  # nothing new: the stream (filter, noise) stays where it is
            return np.zeros((0, 6))
        noisy = raw + self.bias + rng.normal(0.0, 1.0, raw.shape) * self.noise_std
        if self.alpha < 1.0:
            a = self.alpha
            filtered, _ = lfilter([a], [1.0, a - 1.0], noisy, axis=0, zi=((1 - a) * self.filter_state)[None, :])
            self.filter_state = filtered[-1]
        else:
            filtered = noisy
            self.filter_state = noisy[-1]
        return filtered - self.offset

    def tare(self, samples: np.ndarray) -> None:
        """Zero the sensor on the mean of recent output samples (n, 6), taken at rest."""
        self.offset = self.offset + samples.mean(axis=0)

    @staticmethod
    def period_statistics(samples: np.ndarray) -> np.ndarray:
        """(n, 6) samples -> (12,): mean force/torque, then max-abs force/torque."""
        return np.concatenate([samples.mean(axis=0), np.abs(samples).max(axis=0)]).astype(np.float32)

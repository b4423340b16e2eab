"""Vital-sign values for one set: mostly the patient's own, shifted by fever, high BP or a reaction.

Split from the session timeline because it is the hot path of a large load
(one call per vitals row): the noise is drawn once into a table and picked by
`getrandbits`, and the range clamps only run for abnormal sets.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from infusion.demo.events import BASELINE, FEVER, HYPERTENSION, ROUTINE, ReactionSim
from infusion.demo.therapies import PatientInfo


class VitalsDrawer:
    """Draws (SBP, DBP, pulse, RR, temperature °F, SpO2) from the load's one random generator."""

    def __init__(self, rng: Random, ri: Callable[[int, int], int]) -> None:
        self.rng = rng
        self.ri = ri
        self.noise = [self._noise_vector() for _ in range(4096)]

    def _noise_vector(self) -> tuple[int, int, int, int, float, int]:
        g = self.rng.gauss
        return (
            round(g(0, 6)),
            round(g(0, 4)),
            round(g(0, 4)),
            self.rng.choice((-2, 0, 0, 0, 2)),
            round(g(0, 0.25), 1),
            self.rng.choice((-1, 0, 0, 0, 1)),
        )

    def values(
        self,
        patient: PatientInfo,
        kind: int,
        reaction: ReactionSim | None,
        lemtrada_day1: bool,
    ) -> tuple[int, int, int, int, float, int]:
        """(SBP, DBP, pulse, RR, temperature °F, SpO2) for one set, mostly normal around the patient's own."""
        ds, dd, dp, dr, dt, do = self.noise[self.rng.getrandbits(12)]
        sbp, dbp, pulse = patient.sbp + ds, patient.dbp + dd, patient.pulse + dp
        rr, temp, spo2 = patient.rr + dr, patient.temp_f + dt, min(100, patient.spo2 + do)
        if lemtrada_day1:
            pulse += 15  # day-1 mean heart rate up ~20 bpm (docs/clinical-basis.md §11)
        if kind == ROUTINE or kind == BASELINE:  # values stay near the patient's own: no range clamps needed
            return sbp, min(dbp, sbp - 15), pulse, rr, round(temp, 1), spo2
        if kind == FEVER:
            temp = 100.4 + self.ri(1, 18) / 10
            pulse += 12
        elif kind == HYPERTENSION:
            sbp, dbp = 182 + self.ri(0, 14), 104 + self.ri(0, 12)
        elif reaction is not None:
            sbp, dbp, pulse, rr, temp, spo2 = self._reacting(reaction, sbp, dbp, pulse, rr, temp, spo2)
        sbp = int(min(230, max(65, sbp)))
        dbp = int(min(sbp - 15, max(40, dbp)))
        return sbp, dbp, int(min(170, max(38, pulse))), int(min(32, max(8, rr))), round(temp, 1), int(spo2)

    def _reacting(
        self, r: ReactionSim, sbp: int, dbp: int, pulse: int, rr: int, temp: float, spo2: int
    ) -> tuple[int, int, int, int, float, int]:
        """The set taken during a reaction: each symptom moves the measures it shows in."""
        rnd = self.ri
        s = r.symptoms
        if "fever" in s:
            temp = 100.5 + rnd(0, 19) / 10
        if "chills" in s:
            temp, pulse = max(temp, 99.8 + rnd(0, 12) / 10), pulse + 10
        if "flushing" in s or "chest_discomfort" in s:
            pulse += 10
        if "tachycardia" in s:
            pulse = 112 + rnd(0, 24)
        if "hypotension" in s:
            sbp, dbp = sbp - rnd(32, 50), dbp - rnd(12, 20)
        if "dyspnea" in s:
            spo2, rr = 90 + rnd(0, 3), 22 + rnd(0, 5)
        if "headache" in s:
            sbp += 8
        if "anaphylaxis" in s:
            sbp, dbp, pulse = 76 + rnd(0, 10), 42 + rnd(0, 8), 122 + rnd(0, 18)
            spo2, rr = 87 + rnd(0, 4), 26 + rnd(0, 4)
        return sbp, dbp, pulse, rr, temp, spo2

"""EER, FNMR at fixed FMR and calibration against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.evaluation.calibration import fit_calibration
from pipelines.evaluation.metrics import eer, fnmr_at_fmr


def test_perfect_separation_has_zero_eer() -> None:
    # given genuine scores all above impostor scores
    # when / then
    assert eer(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0


def test_complete_inversion_has_eer_one() -> None:
    assert eer(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0


def test_crossing_pair_meets_at_one_threshold() -> None:
    # given genuine {2, 4} and impostor {1, 3}
    # threshold 2: FMR 1/2, FNMR 0; threshold 3: FMR 1/2 (impostor 3 accepted), FNMR 1/2 (genuine 2 rejected)
    # when
    value = eer(np.array([2.0, 4.0]), np.array([1.0, 3.0]))
    # then
    assert value == pytest.approx(0.5)


def test_eer_crossing_between_steps() -> None:
    # given 4 genuine {1, 5, 6, 7} and 4 impostor {0, 2, 3, 4}
    # threshold 1: FMR 3/4, FNMR 0; threshold 2: FMR 3/4, FNMR 1/4;
    # threshold 3: FMR 2/4, FNMR 1/4; threshold 4: FMR 1/4, FNMR 1/4 -> EER 1/4
    value = eer(np.array([1.0, 5.0, 6.0, 7.0]), np.array([0.0, 2.0, 3.0, 4.0]))
    assert value == pytest.approx(0.25)


def test_eer_interpolates_when_no_threshold_gives_equal_rates() -> None:
    # given genuine {1, 3} and impostor {0, 2, 2.5, 4}
    # threshold 1: FMR 3/4, FNMR 0; threshold 2: FMR 3/4, FNMR 1/2 (diff 1/4)
    # threshold 2.5: FMR 2/4, FNMR 1/2 (diff 0) -> EER 1/2
    value = eer(np.array([1.0, 3.0]), np.array([0.0, 2.0, 2.5, 4.0]))
    assert value == pytest.approx(0.5)
    # given genuine {1, 3, 4, 5} and impostor {2}: threshold 2 gives (FMR 1, FNMR 1/4),
    # threshold 3 gives (0, 1/4): the rates cross on that segment at 1/4
    assert eer(np.array([1.0, 3.0, 4.0, 5.0]), np.array([2.0])) == pytest.approx(0.25)


def test_eer_segment_crossing() -> None:
    # given genuine {1, 2} and impostor {0, 1.5, 1.5, 1.5}
    # threshold 1: FMR 3/4, FNMR 0 (diff 3/4); threshold 1.5: FMR 3/4, FNMR 1/2 (diff 1/4)
    # threshold 2: FMR 0, FNMR 1/2 (diff -1/2): crossing a third of the way from (3/4, 1/2) to (0, 1/2)
    value = eer(np.array([1.0, 2.0]), np.array([0.0, 1.5, 1.5, 1.5]))
    assert value == pytest.approx(0.5)


def test_fnmr_at_fmr_picks_the_strictest_threshold_needed() -> None:
    # given 10 impostors with one high outlier and genuine scores spread out
    impostor = np.array([0.0] * 9 + [5.0])
    genuine = np.array([1.0, 2.0, 6.0, 7.0])
    # when FMR must be 0 the threshold rises above 5: two of four genuine are rejected
    assert fnmr_at_fmr(genuine, impostor, 0.0) == pytest.approx(0.5)
    # when FMR may be 10% the threshold is 1: nothing is rejected
    assert fnmr_at_fmr(genuine, impostor, 0.1) == 0.0


def test_calibration_is_monotone_and_centred_between_classes() -> None:
    # given genuine distances around 1 and impostor distances around 3
    rng = np.random.default_rng(0)
    g, i = rng.normal(1.0, 0.3, 500), rng.normal(3.0, 0.3, 2000)
    # when
    cal = fit_calibration(g, i)
    # then closer is more genuine, the midpoint is about even odds
    assert cal.slope < 0
    assert float(cal.score(0.5)) > 0.99 and float(cal.score(3.5)) < 0.01
    assert float(cal.llr(2.0)) == pytest.approx(0.0, abs=0.5)

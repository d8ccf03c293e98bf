"""Stage statistics, `main.py report`, and the voice-to-voice benchmark on a real replay."""
from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib.image
import pytest
from rich.console import Console

from conversation.benchmarks.latency_report import ReportError, main, report
from conversation.benchmarks.stats import normalize_words, percentile, word_error_rate
from conversation.latency import CHAIN, VOICE_TO_VOICE, stage_durations_ms

RECORD = {"turn": 1, "speech_end": 1.0, "endpoint": 1.2, "stt_done": 1.35, "llm_first_token": 1.6,
          "first_chunk_ready": 1.7, "tts_first_audio": 1.9, "committed": 2.0, "playback_start": 2.02,
          "interrupted": False, "error": None}


# --- stats ---------------------------------------------------------------

def test_stages_add_up_to_voice_to_voice():
    durations = stage_durations_ms(RECORD)
    assert durations == {"endpoint_wait": 200, "stt": 150, "llm_first_token": 250, "first_chunk": 100,
                         "tts_first_audio": 200, "commit_hold": 100, "output": 20, "commit_wait": 1000,
                         "voice_to_voice": 1020}
    assert sum(durations[stage.name] for stage in CHAIN) == pytest.approx(durations[VOICE_TO_VOICE.name])


def test_missing_times_give_none_not_zero():
    durations = stage_durations_ms({**RECORD, "llm_first_token": None, "playback_start": None})
    assert durations["llm_first_token"] is None and durations["first_chunk"] is None
    assert durations["voice_to_voice"] is None and durations["stt"] == 150


def test_percentile_ignores_none():
    assert percentile([None, 1, 2, 3, None], 50) == 2
    assert percentile([10, 20], 90) == pytest.approx(19)
    assert percentile([None], 50) is None


@pytest.mark.parametrize("text, words", [
    ("And so, my fellow Americans: ask NOT!", "and so my fellow americans ask not"),
    ("In eighteen thirteen", "in 1813"),
    ("IN 1813.", "in 1813"),
    ("twenty-one people, one hundred and five", "21 people 100 and 5"),
    ("It's 3,000 dollars", "its 3000 dollars"),
    ("no account of, um, where we are", "no account of where we are"),
])
def test_normalize_words(text, words):
    assert normalize_words(text) == words.split()


def test_word_error_rate():
    assert word_error_rate("ask not what your country", "Ask not what your country.") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5  # one substitution, one deletion
    assert word_error_rate("", "anything") is None


# --- report --------------------------------------------------------------

@pytest.fixture(scope="module")
def real_log(replayed, tmp_path_factory) -> Path:
    """The turn log of a real replay of a ~6 s meeting clip through the whole agent."""
    turns = replayed("lhotse_ES2011a.Headset-0-40s-46s.wav").turns
    assert turns, "the replay gave no turn"
    log = tmp_path_factory.mktemp("report") / "turns.jsonl"
    log.write_text("".join(json.dumps(turn) + "\n" for turn in turns))
    return log


def render(log: Path) -> tuple[Path, str]:
    out = io.StringIO()
    png = report(log, Console(file=out, width=120))
    return png, out.getvalue()


@pytest.mark.slow
def test_report_prints_the_stages_and_draws_the_chart(real_log):
    png, text = render(real_log)
    count = len(real_log.read_text().splitlines())
    assert f"turns.jsonl: {count} turns, 0 interrupted, 0 errors" in text
    for label in ("endpoint wait", "STT", "LLM first token", "first speakable chunk", "TTS first audio",
                  "output latency", "commit wait", "voice-to-voice", "p50 ms", "p90 ms"):
        assert label in text
    assert png == real_log.with_suffix(".png") and png.stat().st_size > 20_000
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 800


@pytest.mark.parametrize("content, message", [
    (None, "turn log not found"),
    ("", "has no turns yet"),
    ("\n\n", "has no turns yet"),
    ('{"turn": 1, "speech_end": 1.0, "playback_start": 1.5}\n{"turn": 2, "spee', "line 2 is not JSON"),
    ('{"hello": "world"}\n', "line 1 is not a turn record"),
])
def test_bad_logs_give_one_clear_line(tmp_path, capsys, content, message):
    log = tmp_path / "turns.jsonl"
    if content is not None:
        log.write_text(content)
    with pytest.raises(ReportError, match=message):
        report(log, Console(file=io.StringIO()))
    assert main([str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_turn_without_a_reply_still_reports(tmp_path):
    log = tmp_path / "turns.jsonl"
    failed = {**RECORD, "turn": 2, "llm_first_token": None, "first_chunk_ready": None, "tts_first_audio": None,
              "playback_start": None, "error": "LlmError: down"}
    log.write_text(json.dumps(RECORD) + "\n" + json.dumps(failed) + "\n")
    png, text = render(log)
    assert "2 turns, 0 interrupted, 1 errors" in text and png.is_file()


# --- the benchmark -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(240)
def test_v2v_benchmark_on_a_short_clip(speech_dir, tmp_path):
    from conversation.benchmarks.v2v import run_v2v_benchmark
    from conftest import write_config

    config = write_config(tmp_path)
    out = io.StringIO()
    result = run_v2v_benchmark(config, [speech_dir / "lhotse_LJ002-0020.wav"], tmp_path / "bench",
                               Console(file=out, width=140))
    saved = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert saved["turns_total"] == result["turns_total"] >= 1
    turn = saved["turns"][0]
    assert turn["v2v_audio_ms"] is not None and 0 < turn["v2v_audio_ms"] < 60_000  # a loose bound: CI machines are slow
    assert abs(turn["onset_vs_log_ms"]) < 50  # the log's playback start is where the audio starts
    assert -50 < turn["endpoint_lag_ms"] < 1500  # the endpointer never ends before the words do
    assert not turn["talked_over"]
    assert 0 < saved["cold_start"]["to_listening_s"] < 120 and saved["cold_start"]["peak_rss_mb"] > 50
    assert saved["peak_rss_mb"] > 50
    clip = saved["clips"][0]
    assert clip["wer_vs_reference"] is not None and clip["wer_vs_reference"] <= 0.5, clip
    text = out.getvalue()
    assert "voice-to-voice (from audio)" in text and "cold start to listening" in text
    assert Path(saved["chart"]).stat().st_size > 20_000

"""The one sample rate the agent's processing runs at."""
# 16 kHz: what WebRTC VAD, WebRTC AEC3, Smart Turn and Whisper all take, so
# every stage after the front end works on the same samples with no resampling.
SAMPLE_RATE = 16000

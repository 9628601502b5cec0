"""Long recordings in one pass: blocked front end and subsampling, CTC decoding over the whole
recording, word timings by CTC segmentation, subtitles."""

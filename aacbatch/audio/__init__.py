"""Audio below everything that models or featurizes it: file checks and decoding
(:mod:`~aacbatch.audio.files`), the CNN14 log-mel front end (:mod:`~aacbatch.audio.logmel`)
and 32 kHz waveforms of registered clips (:mod:`~aacbatch.audio.waveform`)."""

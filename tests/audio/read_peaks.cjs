// Independent reader check: parse our peaks with the waveform-data npm package, print a summary.
// Usage: node read_peaks.cjs <file.json|file.dat>
const fs = require("fs");
const WaveformData = require("waveform-data");

const path = process.argv[2];
const raw = fs.readFileSync(path);
const input = path.endsWith(".json")
  ? JSON.parse(raw.toString("utf8"))
  : raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
const waveform = WaveformData.create(input);
const channels = [];
for (let c = 0; c < waveform.channels; c++) {
  const channel = waveform.channel(c);
  channels.push({ min: channel.min_array(), max: channel.max_array() });
}
process.stdout.write(
  JSON.stringify({
    length: waveform.length,
    channels: waveform.channels,
    sample_rate: waveform.sample_rate,
    scale: waveform.scale,
    bits: waveform.bits,
    duration: waveform.duration,
    data: channels,
  }),
);

/* Time as the player shows it ("1:05", "1:02:05") and as a screen reader says it. */

export function clock(seconds) {
  if (!isFinite(seconds) || seconds < 0) seconds = 0;
  const whole = Math.floor(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = whole % 60;
  const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  return (hours ? hours + ":" : "") + mm + ":" + String(secs).padStart(2, "0");
}

export function spoken(seconds) {
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  const parts = [];
  if (minutes) parts.push(minutes + (minutes === 1 ? " minute" : " minutes"));
  parts.push((whole % 60) + (whole % 60 === 1 ? " second" : " seconds"));
  return parts.join(" ");
}

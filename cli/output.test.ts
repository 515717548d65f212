import { describe, expect, it } from "vitest";
import { colourEnabled, createStyle, fieldPath, latency, percent, rps, span, table } from "./output.ts";

const tty = { write() {}, isTTY: true };
const pipe = { write() {}, isTTY: false };

describe("output for people", () => {
  it("colours a terminal only, honours NO_COLOR (when not empty), --no-color, TERM=dumb and FORCE_COLOR", () => {
    expect(colourEnabled(tty, {}, false)).toBe(true);
    expect(colourEnabled(pipe, {}, false)).toBe(false);
    expect(colourEnabled(tty, { NO_COLOR: "1" }, false)).toBe(false);
    expect(colourEnabled(tty, { NO_COLOR: "" }, false)).toBe(true);
    expect(colourEnabled(tty, {}, true)).toBe(false);
    expect(colourEnabled(tty, { TERM: "dumb" }, false)).toBe(false);
    expect(colourEnabled(pipe, { FORCE_COLOR: "1" }, false)).toBe(true);
    expect(colourEnabled(tty, { FORCE_COLOR: "1", NO_COLOR: "1" }, false)).toBe(false);
  });

  it("aligns table columns by their text, colour codes not counted", () => {
    const style = createStyle(true);
    const text = table(["NAME", "SUCCESS"], [["orders", { text: "100.00%", paint: style.green }], ["a", { text: "50.00%", paint: style.red, align: "right" }]], style);
    const plain = text.replace(/\x1b\[\d+m/g, "");
    expect(plain).toBe("NAME    SUCCESS\norders  100.00%\na        50.00%\n");
  });

  it("formats rates, latencies, spans and field paths as linkerd and kubectl do", () => {
    expect([percent(1), percent(0.995), percent(null)]).toEqual(["100.00%", "99.50%", "-"]);
    expect([rps(0.5), rps(12.34), rps(150.2)]).toEqual(["0.50rps", "12.3rps", "150rps"]);
    expect([latency(0.5), latency(3), latency(25.4), latency(1200), latency(null)]).toEqual(["0.5ms", "3ms", "25ms", "1.2s", "-"]);
    expect([span(45_000), span(872_000), span(7_500_000), span(2 * 86_400_000)]).toEqual(["45s", "14m32s", "2h5m", "2d"]);
    expect([fieldPath(["backends", 0, "weight"]), fieldPath([])]).toEqual(["backends[0].weight", "(document)"]);
  });
});

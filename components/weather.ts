/**
 * weather: calls an outbound HTTP API (Open-Meteo's forecast API) and
 * answers with a smaller, friendlier shape. The API host must be granted
 * under "net" in weather.permissions.json.
 *
 *   GET /weather/{city}    {"city", "temperatureC", "windKmh", "summary", "observedAt"}
 *
 * A different API base URL (a mirror, or a test server) can be set in
 * `<data>/weather/config.json` as {"api": "http://..."}; the component sees that
 * directory read-only as /weather when "read" grants "weather".
 */
import { defineComponent, HttpError, json } from "@pier/guest";
import { fetch } from "@pier/guest/fetch";
import { fs } from "@pier/guest/fs";

const CITIES: Record<string, { latitude: number; longitude: number }> = {
  berlin: { latitude: 52.52, longitude: 13.41 },
  paris: { latitude: 48.85, longitude: 2.35 },
  tokyo: { latitude: 35.69, longitude: 139.69 },
  "new-york": { latitude: 40.71, longitude: -74.01 },
};

/** The API base URL: the config file's, else Open-Meteo's. */
async function apiBase(): Promise<string> {
  try {
    const config = JSON.parse(await fs.readTextFile("/weather/config.json"));
    if (typeof config.api === "string") return config.api;
  } catch {
    // No config (or no "read" grant): use the public API.
  }
  return "https://api.open-meteo.com";
}

function summary(temperature: number): string {
  if (temperature < 0) return "freezing";
  if (temperature < 10) return "cold";
  if (temperature < 20) return "mild";
  return temperature < 28 ? "warm" : "hot";
}

export default defineComponent({
  metadata: { displayName: "Weather", description: "Current weather from Open-Meteo." },
  routes: {
    "GET /weather/{city}": async (_req, { params }) => {
      const place = CITIES[params.city.toLowerCase()];
      if (!place) {
        throw new HttpError(404, `unknown city; try one of: ${Object.keys(CITIES).join(", ")}`);
      }
      const url = new URL("/v1/forecast", await apiBase());
      url.searchParams.set("latitude", String(place.latitude));
      url.searchParams.set("longitude", String(place.longitude));
      url.searchParams.set("current", "temperature_2m,wind_speed_10m");

      let response: Response;
      try {
        response = await fetch(url, { headers: { accept: "application/json" } });
      } catch (error) {
        throw new HttpError(502, `the weather API cannot be reached: ${(error as Error).message}`);
      }
      if (!response.ok) throw new HttpError(502, `the weather API answered ${response.status}`);
      const { current } = await response.json();
      return json({
        city: params.city,
        temperatureC: current.temperature_2m,
        windKmh: current.wind_speed_10m,
        summary: summary(current.temperature_2m),
        observedAt: current.time,
      });
    },
  },
});

// Text imports bundled by esbuild (`with { type: "text" }`): the dashboard's browser assets,
// served by the control worker from its own bundle (no CDN).
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.min.css" {
  const text: string;
  export default text;
}
declare module "*.client.js" {
  const text: string;
  export default text;
}
declare module "*.client.css" {
  const text: string;
  export default text;
}

/**
 * The spellings of a denied path that reached an app behind `DENY /admin, /admin/*` before
 * paths were normalized (issue 10), with the answer each must get: 403 where normalization
 * makes it `/admin`, 400 where the path cannot be normalized safely. One table for the unit,
 * router and sidecar tests, so every host is held to the same list.
 */
export const DENIED_ADMIN_PATHS: readonly (readonly [path: string, status: 400 | 403, code: "bad-request" | "forbidden"])[] = [
  ["/%61dmin", 403, "forbidden"],
  ["//admin", 403, "forbidden"],
  ["/admin;x", 403, "forbidden"],
  ["/ADMIN", 403, "forbidden"],
  ["/admin%2fx", 400, "bad-request"],
  ["/admin/../admin", 403, "forbidden"],
  ["/./admin", 403, "forbidden"],
  ["/%2e%2e/admin", 403, "forbidden"],
  ["/Admin/%2E%2e/admin/users;jsessionid=1", 403, "forbidden"],
  ["/public/..;/admin", 400, "bad-request"],
  ["/admin%5cx", 400, "bad-request"],
];

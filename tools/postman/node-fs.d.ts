// The Node APIs the document and collection writers use (they run under tsx); the project's types are the Worker's.
declare module "node:fs" {
  export function mkdirSync(path: string, options?: { recursive?: boolean }): void;
  export function writeFileSync(path: string, data: string): void;
}

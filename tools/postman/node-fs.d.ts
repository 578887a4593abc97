// The one Node API the collection writer uses (it runs under tsx); the project's types are the Worker's.
declare module "node:fs" {
  export function writeFileSync(path: string, data: string): void;
}

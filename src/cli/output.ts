/** The CLI's only way to print: everything else logs JSON through pino. */
export const print = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
export const printError = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

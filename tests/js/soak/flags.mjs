// The soak scripts' command-line flags: `--name value` pairs read into an options object.

/** `numbers` and `strings` list [flag, option key] pairs; flags not given are left out. */
export function readFlags(args, numbers, strings = []) {
  const value = (name) => {
    const i = args.indexOf(`--${name}`);
    return i < 0 ? undefined : args[i + 1];
  };
  const options = {};
  for (const [flag, key] of numbers) if (value(flag) !== undefined) options[key] = Number(value(flag));
  for (const [flag, key] of strings) if (value(flag) !== undefined) options[key] = value(flag);
  return options;
}

/**
 * Remembers the answers of a pure function of a string for up to `size` distinct inputs, then starts
 * over. For values taken from request headers, which repeat on every request of a client.
 */
export function memoize<T>(compute: (input: string) => T, size = 256): (input: string) => T {
  const answers = new Map<string, T>();
  return (input) => {
    const known = answers.get(input);
    if (known !== undefined || answers.has(input)) return known as T;
    if (answers.size >= size) answers.clear();
    const answer = compute(input);
    answers.set(input, answer);
    return answer;
  };
}

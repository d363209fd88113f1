/** Seeded: every test run feeds the same "random" input, so a failure reproduces. */
export { seededRandom as prng } from '../../src/random.js';

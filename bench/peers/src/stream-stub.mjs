// dpack (a persistence-plugin format the benchmark does not use) imports Node's stream at load time.
export class Transform {}
export default { Transform };

/** Addresses and port ranges: a leaf module, so that the plan, the stack and the mesh can share them without importing each other. */
export interface Endpoint {
  host: string;
  port: number;
}

export interface PortRange {
  /** First port, even. */
  min: number;
  /** Last port, inclusive. */
  max: number;
}

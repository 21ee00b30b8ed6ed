/**
 * The measurement codes this service accepts, each with its one UCUM unit and a
 * physiologically possible range (anything outside is a device or transport
 * fault, not a measurement). Codes are IEEE 11073-10101 MDC numeric codes (as
 * the HL7 Personal Health Device IG carries them, system
 * urn:iso:std:iso:11073:10101) or LOINC codes. Adding a code is a reviewed change.
 */
export interface CodeSpec {
  system: "mdc" | "loinc";
  display: string;
  /** UCUM (case-sensitive) unit code. */
  unit: string;
  min: number;
  max: number;
}

export const CODES: Readonly<Record<string, CodeSpec>> = {
  // IEEE 11073-10101 (MDC)
  "150456": { system: "mdc", display: "MDC_PULS_OXIM_SAT_O2", unit: "%", min: 0, max: 100 },
  "149530": { system: "mdc", display: "MDC_PULS_OXIM_PULS_RATE", unit: "/min", min: 0, max: 350 },
  "147842": { system: "mdc", display: "MDC_ECG_HEART_RATE", unit: "/min", min: 0, max: 350 },
  "150021": { system: "mdc", display: "MDC_PRESS_BLD_NONINV_SYS", unit: "mm[Hg]", min: 0, max: 350 },
  "150022": { system: "mdc", display: "MDC_PRESS_BLD_NONINV_DIA", unit: "mm[Hg]", min: 0, max: 300 },
  "150023": { system: "mdc", display: "MDC_PRESS_BLD_NONINV_MEAN", unit: "mm[Hg]", min: 0, max: 300 },
  "150364": { system: "mdc", display: "MDC_TEMP_BODY", unit: "Cel", min: 15, max: 46 },
  "151562": { system: "mdc", display: "MDC_RESP_RATE", unit: "/min", min: 0, max: 150 },
  // LOINC
  "8867-4": { system: "loinc", display: "Heart rate", unit: "/min", min: 0, max: 350 },
  "59408-5": { system: "loinc", display: "Oxygen saturation by pulse oximetry", unit: "%", min: 0, max: 100 },
  "8310-5": { system: "loinc", display: "Body temperature", unit: "Cel", min: 15, max: 46 },
  "9279-1": { system: "loinc", display: "Respiratory rate", unit: "/min", min: 0, max: 150 },
  "8480-6": { system: "loinc", display: "Systolic blood pressure", unit: "mm[Hg]", min: 0, max: 350 },
  "8462-4": { system: "loinc", display: "Diastolic blood pressure", unit: "mm[Hg]", min: 0, max: 300 },
};

export function codeSpec(code: string): CodeSpec | undefined {
  return Object.hasOwn(CODES, code) ? CODES[code] : undefined;
}

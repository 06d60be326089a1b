/** Types of scripts/actions.mjs (the list of actions, derived from the action.yml files). */
export declare const ACTION_DIRS: readonly { name: string; dir: string }[]
export declare const ACTIONS: readonly string[]
export declare function actionDir(name: string): string

"""Run by ``test_two_processes_slice_gathered_weights`` under ``torchrun --nproc_per_node 2``.

Each rank dumps, per loss call, the rewards gathered over both ranks, its own prompt ids and the
advantages that reached TRL's loss; the test checks them against ``WeightScheme.weights``.
"""

import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    from conftest import build_model, build_prompts, build_tokenizer  # this file's folder is sys.path[0]
    from trl import GRPOConfig

    from rlvrlens.objectives import log_odds
    from rlvrlens.training.trl_adapter import PromptSuccessRecorder, WeightSchemeGRPOTrainer

    def reward(completions, answer, **kwargs):
        return [float(a in c) for c, a in zip(completions, answer)]

    class Dump(WeightSchemeGRPOTrainer):
        def _calculate_rewards(self, inputs, *args):
            rewards = super()._calculate_rewards(inputs, *args)
            self.seen = ([x["prompt_id"] for x in inputs], rewards.sum(dim=1).tolist())
            return rewards

        def _compute_loss(self, model, inputs):
            with (out / f"rank{self.accelerator.process_index}.jsonl").open("a") as fh:
                fh.write(json.dumps({"ids": self.seen[0], "gathered": self.seen[1],
                                     "advantages": inputs["advantages"].tolist()}) + "\n")
            return super()._compute_loss(model, inputs)

    tokenizer = build_tokenizer()
    # 6 completions per rank and M = 4: the second group of each step spans both ranks
    args = GRPOConfig(output_dir=str(out / "trl"), max_steps=2, per_device_train_batch_size=6, num_generations=4,
                      max_completion_length=4, use_vllm=False, report_to="none", bf16=False, use_cpu=True,
                      save_strategy="no", learning_rate=1e-3, disable_tqdm=True)
    Dump(model=build_model(len(tokenizer)), reward_funcs=reward, args=args, train_dataset=build_prompts(),
         processing_class=tokenizer, scheme=log_odds(4),
         callbacks=[PromptSuccessRecorder(out / "groups.jsonl")]).train()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
